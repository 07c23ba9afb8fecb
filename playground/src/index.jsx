// The Mandate playground: GraphiQL, bundled by build.mjs into gql/static/ and served by Mandate
// itself, so it works where the internet is blocked. Operations are POSTed as JSON to the page's
// own path (/graphql), with the token of the Token field above the tabs (src/session.js); what the
// browser keeps is in src/storage.js.
import { setNonce } from "get-nonce";
import { GraphiQL } from "graphiql";
import { useSyncExternalStore } from "react";
import { createRoot } from "react-dom/client";
import { createFetcher } from "./fetcher.js";
import { createSession } from "./session.js";
import { createKeptStorage } from "./storage.js";
import "graphiql/style.css";
import "./page.css";

// GraphiQL's dialogs add a <style> element (scroll locking); the page's Content-Security-Policy
// admits it by the nonce the server gave this <script> element, and no other inline style.
setNonce(document.currentScript?.nonce || undefined);

const LOGIN = `# Log in: the token it returns goes into the Token field at the top, and
# every tab sends it. "TWO_FACTOR_REQUIRED": run VerifyTwoFactor next.
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    status
    token
    expiresAt
    user { id email twoFactorEnabled twoFactorRequired }
  }
}
`;

const VERIFY = `# The second factor: six digits from the authenticator app, or a recovery code.
# It sends the token Login put in the Token field, and puts the full
# session's token there.
mutation VerifyTwoFactor($code: String!) {
  verifyTwoFactor(code: $code) {
    status
    token
    expiresAt
  }
}
`;

const TREE = `# Every account you reach, with its whole subtree (parents before children).
query AccountTree {
  accounts {
    id
    name
    viewerRole
    twoFactorEnforcement { enforced enforcedHere source { id name } }
    sites { id name }
    descendants {
      id
      name
      viewerRole
      parent { id }
      twoFactorEnforcement { enforced enforcedHere source { id name } }
      sites { id name }
    }
  }
}
`;

const ENFORCE = `# Switch 2FA enforcement on or off for one account (copy its id from AccountTree).
# Needs a manager's session that passed a second factor.
mutation SetEnforcement($accountId: ID!, $enforced: Boolean!) {
  setEnforcement(accountId: $accountId, enforced: $enforced) {
    id
    name
    twoFactorEnforcement { enforced enforcedHere changedAt changedBy { name } }
    twoFactorCompliance { totalUsers enrolledUsers pendingUsers { email } }
  }
}
`;

const json = (value) => JSON.stringify(value, null, 2);

const EXAMPLES = [
  { query: LOGIN, variables: json({ email: "manager@example.org", password: "demo-password" }) },
  { query: VERIFY, variables: json({ code: "123456" }) },
  { query: TREE, variables: "{}" },
  { query: ENFORCE, variables: json({ accountId: "", enforced: true }) },
];

const session = createSession();
const fetcher = createFetcher(session);
const storage = createKeptStorage(EXAMPLES);

// The one place for the token: every tab sends it; typed here or set by a login.
function TokenField() {
  const token = useSyncExternalStore(session.subscribe, session.token);
  return (
    <div className="mandate-session">
      <label htmlFor="mandate-token">Token</label>
      <input
        id="mandate-token"
        type="text"
        autoComplete="off"
        spellCheck={false}
        placeholder="none: log in with the Login tab, or paste a token"
        value={token}
        onChange={(event) => session.setToken(event.target.value)}
      />
      <button type="button" onClick={() => session.setToken("")} disabled={!token}>
        Forget
      </button>
      <span>Sent as Authorization: Bearer by every tab. Kept in this page only: a reload forgets it.</span>
    </div>
  );
}

createRoot(document.getElementById("graphiql")).render(
  <div className="mandate-page">
    <TokenField />
    <div className="mandate-graphiql">
      <GraphiQL
        fetcher={fetcher}
        storage={storage}
        defaultEditorToolsVisibility="variables"
        isHeadersEditorEnabled
        shouldPersistHeaders={false}
      />
    </div>
  </div>,
);
