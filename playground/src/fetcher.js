// GraphiQL's fetcher: POSTs each operation as JSON to the page's own path (/graphql), with the
// page's token (src/session.js) unless the tab's headers give an Authorization of their own.
import { Kind, parse } from "graphql";
import { followAnswer } from "./session.js";

function parsedOrNull(query) {
  try {
    return parse(query);
  } catch {
    return null; // the server explains the syntax error
  }
}

// GraphiQL 4 reads the operation name 100 ms after an edit, so a run straight after one can carry
// the name of the document before (Login, with "{ me { email } }"): send only a name the document
// defines.
function operationName(document, name) {
  if (!name || !document) return name || undefined;
  const names = document.definitions
    .filter((definition) => definition.kind === Kind.OPERATION_DEFINITION)
    .map((definition) => definition.name?.value);
  return names.includes(name) ? name : undefined;
}

function operationOf(document, name) {
  const operations = (document?.definitions ?? []).filter((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  return name ? operations.find((operation) => operation.name?.value === name) : operations.length === 1 ? operations[0] : undefined;
}

// "Authorization": "Bearer " with no token is left out: the server takes an empty bearer for a bad
// token (UNAUTHENTICATED), where no header means no session.
function tabHeaders(headers) {
  const sent = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() === "authorization" && /^(bearer)?\s*$/i.test(String(value).trim())) continue;
    sent[name] = value;
  }
  return sent;
}

export function createFetcher(session) {
  return async function fetcher(params, options) {
    const document = parsedOrNull(params.query);
    const name = operationName(document, params.operationName);
    const headers = tabHeaders(options?.headers);
    const ownAuthorization = Object.keys(headers).some((header) => header.toLowerCase() === "authorization");
    const token = ownAuthorization ? "" : session.bearer();
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(window.location.pathname, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ ...params, operationName: name }),
      credentials: "omit",
    });
    let result;
    try {
      result = await response.json();
    } catch {
      return { errors: [{ message: `The server answered ${response.status} without JSON.` }] };
    }
    if (document) followAnswer(session, document, operationOf(document, name), result?.data, Boolean(token));
    return result;
  };
}
