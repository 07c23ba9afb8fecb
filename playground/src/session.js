// The page's one bearer token, shared by every tab: held in this page's memory only (a reload
// forgets it, no storage ever sees it). A successful login, verifyTwoFactor or confirmTotp that
// returns a token sets it; a successful logout sent with it clears it.
import { Kind } from "graphql";

// The root fields whose answer carries the session token to use from then on.
const SIGN_IN_FIELDS = new Set(["login", "verifyTwoFactor", "confirmTotp"]);

export function createSession() {
  let token = "";
  const listeners = new Set();
  return {
    token: () => token,
    setToken(value) {
      token = value;
      for (const listener of listeners) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    // What goes after "Bearer ": the token as typed, without a pasted "Bearer " of its own.
    bearer: () => token.trim().replace(/^bearer\s+/i, ""),
  };
}

function responseKey(field) {
  return field.alias?.value ?? field.name.value;
}

// The fields a selection set selects, through fragments (whose type conditions the server checked).
function selectedFields(selectionSet, fragments) {
  return (selectionSet?.selections ?? []).flatMap((selection) => {
    if (selection.kind === Kind.FIELD) return [selection];
    if (selection.kind === Kind.INLINE_FRAGMENT) return selectedFields(selection.selectionSet, fragments);
    return selectedFields(fragments.get(selection.name.value)?.selectionSet, fragments);
  });
}

// Follows the answer to one operation of `document`: a new session token, or the end of the one
// that was sent (`sentToken`, false when the tab's own Authorization header went instead).
export function followAnswer(session, document, operation, data, sentToken) {
  if (operation?.operation !== "mutation" || !data) return;
  const fragments = new Map(
    document.definitions
      .filter((definition) => definition.kind === Kind.FRAGMENT_DEFINITION)
      .map((definition) => [definition.name.value, definition]),
  );
  for (const field of selectedFields(operation.selectionSet, fragments)) {
    const answer = data[responseKey(field)];
    if (SIGN_IN_FIELDS.has(field.name.value)) {
      const token = selectedFields(field.selectionSet, fragments).find((sub) => sub.name.value === "token");
      const value = token && answer?.[responseKey(token)];
      if (typeof value === "string" && value) session.setToken(value);
    } else if (field.name.value === "logout" && answer === true && sentToken) {
      session.setToken("");
    }
  }
}
