// The Mandate playground: GraphiQL, bundled by build.mjs into gql/static/ and served by Mandate
// itself, so it works where the internet is blocked. Operations are POSTed as JSON to the page's
// own path (/graphql); the bearer token goes in the headers editor.
import { setNonce } from "get-nonce";
import { GraphiQL } from "graphiql";
import { parse } from "graphql";
import { createRoot } from "react-dom/client";
import "graphiql/style.css";
import "./page.css";

// GraphiQL's dialogs add a <style> element (scroll locking); the page's Content-Security-Policy
// admits it by the nonce the server gave this <script> element, and no other inline style.
setNonce(document.currentScript?.nonce || undefined);

const HEADERS = '{\n  "Authorization": "Bearer "\n}';

const LOGIN = `# Log in. A "TWO_FACTOR_REQUIRED" status means: copy the token into the
# headers below ("Bearer <token>"), then run VerifyTwoFactor with the code of your app.
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
# Put the token from Login in the headers below; use the token this returns from then on.
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

const TABS = [
  { query: LOGIN, variables: json({ email: "manager@example.org", password: "demo-password" }), headers: HEADERS },
  { query: VERIFY, variables: json({ code: "123456" }), headers: HEADERS },
  { query: TREE, variables: "{}", headers: HEADERS },
  { query: ENFORCE, variables: json({ accountId: "", enforced: true }), headers: HEADERS },
];

// "Authorization": "Bearer " with no token yet is left out: the server takes an empty bearer for a
// bad token (UNAUTHENTICATED), where no header means no session.
function requestHeaders(headers) {
  const sent = { "Content-Type": "application/json", Accept: "application/json" };
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() === "authorization" && /^bearer\s*$/i.test(String(value).trim())) continue;
    sent[name] = value;
  }
  return sent;
}

// GraphiQL 4 reads the operation name 100 ms after an edit, so a run straight after one can carry
// the name of the document before (Login, with "{ me { email } }"): send only a name the document
// defines.
function operationName(query, name) {
  if (!name) return undefined;
  try {
    const names = parse(query)
      .definitions.filter((definition) => definition.kind === "OperationDefinition")
      .map((definition) => definition.name?.value);
    return names.includes(name) ? name : undefined;
  } catch {
    return name; // the server explains the syntax error
  }
}

async function fetcher(params, options) {
  const body = { ...params, operationName: operationName(params.query, params.operationName) };
  const response = await fetch(window.location.pathname, {
    method: "POST",
    headers: requestHeaders(options?.headers),
    body: JSON.stringify(body),
    credentials: "omit",
  });
  try {
    return await response.json();
  } catch {
    return { errors: [{ message: `The server answered ${response.status} without JSON.` }] };
  }
}

// GraphiQL 4 opens the first of `defaultTabs` without its variables; give them on a first visit
// (later visits reopen the tabs GraphiQL kept in localStorage, tokens left out).
function firstVisit() {
  try {
    return !window.localStorage.getItem("graphiql:tabState");
  } catch {
    return true;
  }
}

createRoot(document.getElementById("graphiql")).render(
  <GraphiQL
    fetcher={fetcher}
    defaultTabs={TABS}
    variables={firstVisit() ? TABS[0].variables : undefined}
    defaultHeaders={HEADERS}
    defaultEditorToolsVisibility="headers"
    isHeadersEditorEnabled
    shouldPersistHeaders={false}
  />,
);
