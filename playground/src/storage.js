// What the playground keeps in the browser. GraphiQL writes its editors to localStorage
// (`graphiql:*`); a playground of a 2FA service keeps no token, password, code or recovery code, so
// GraphiQL gets this Storage instead, which keeps:
//   tabState           the tabs: their documents (string values emptied) and titles; never their
//                      variables, headers or responses
//   queries, favorites the history: documents (string values emptied), names and labels, no
//                      variables or headers
//   theme, *Flex, shouldPersistHeaders   the look and the panes' sizes
// and nothing else: `query`, `variables` and `headers` are answered from the kept tabs and never
// written, so what GraphiQL reopens always agrees with them (no duplicate tab on reload).
import { Lexer, Source, TokenKind, parse } from "graphql";

const NAMESPACE = "graphiql:";
const TABS = `${NAMESPACE}tabState`;
const HISTORIES = new Set([`${NAMESPACE}queries`, `${NAMESPACE}favorites`]);
const SETTINGS = new Set(
  ["theme", "editorFlex", "docExplorerFlex", "secondaryEditorFlex", "shouldPersistHeaders"].map((name) => NAMESPACE + name),
);
const FROM_TABS = {
  [`${NAMESPACE}query`]: (tab) => tab.query,
  [`${NAMESPACE}variables`]: (tab) => tab.variables,
  [`${NAMESPACE}headers`]: () => null,
};

const STRINGS = new Set([TokenKind.STRING, TokenKind.BLOCK_STRING]);

// A document may carry a password or a code inline (`login(password: "...")`): every string
// literal is kept as "" and the rest as typed.
export function withoutStringValues(document) {
  if (typeof document !== "string") return null;
  let kept = "";
  let rest = document;
  for (;;) {
    const lexer = new Lexer(new Source(rest));
    let from = 0;
    try {
      for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
        if (STRINGS.has(token.kind)) {
          kept += `${rest.slice(from, token.start)}""`;
          from = token.end;
        }
      }
      return kept + rest.slice(from);
    } catch (error) {
      const read = Math.max(from, lexer.token.end);
      const at = error.positions?.[0] ?? rest.length;
      // A string that does not end may be a secret still being typed: nothing from it on is kept.
      if (rest.slice(read, at + 1).includes('"')) return kept + rest.slice(from, read);
      // A character GraphQL does not allow is kept as typed, and the rest read on.
      kept += rest.slice(from, at + 1);
      rest = rest.slice(at + 1);
    }
  }
}

function keptTabs(value) {
  const state = JSON.parse(value);
  return JSON.stringify({
    activeTabIndex: state.activeTabIndex,
    tabs: state.tabs.map((tab) => ({
      id: tab.id,
      title: tab.title,
      query: withoutStringValues(tab.query),
      variables: null,
      headers: null,
      operationName: tab.operationName ?? null,
      response: null,
    })),
  });
}

function keptHistory(key, value) {
  const name = key.slice(NAMESPACE.length);
  const items = JSON.parse(value)[name].map(({ query, operationName, label, favorite }) => ({
    query: withoutStringValues(query), operationName, label, favorite,
  }));
  return JSON.stringify({ [name]: items });
}

function isKept(key) {
  return key === TABS || HISTORIES.has(key) || SETTINGS.has(key);
}

// The form a value is kept in, or null where it is not kept at all.
function kept(key, value) {
  try {
    if (key === TABS) return keptTabs(value);
    if (HISTORIES.has(key)) return keptHistory(key, value);
  } catch {
    return null; // not the shape GraphiQL writes
  }
  return SETTINGS.has(key) ? value : null;
}

function exampleTab(example, index) {
  const name = parse(example.query).definitions[0].name.value;
  return {
    id: `example-${index}`, title: name, query: example.query, variables: example.variables,
    headers: null, operationName: name, response: null,
  };
}

// The tabs GraphiQL reopens: those kept, the example tabs among them with their example variables
// again, or the example tabs on a first visit.
function reopenedTabs(local, examples) {
  try {
    const state = JSON.parse(local?.getItem(TABS));
    if (!Array.isArray(state.tabs) || !state.tabs.length || !Number.isInteger(state.activeTabIndex)) {
      throw new Error("no tabs kept");
    }
    const variables = new Map(examples.map((example) => [withoutStringValues(example.query), example.variables]));
    state.tabs = state.tabs.map((tab) => ({ ...tab, variables: variables.get(tab.query) ?? null }));
    state.activeTabIndex = Math.min(Math.max(state.activeTabIndex, 0), state.tabs.length - 1);
    return state;
  } catch {
    return { activeTabIndex: 0, tabs: examples.map(exampleTab) };
  }
}

function ownKeys(local) {
  return Array.from({ length: local.length }, (_, index) => local.key(index)).filter((key) => key?.startsWith(NAMESPACE));
}

// Rewrites what an earlier playground left (variables, headers, tokens in the history) in the
// kept form, and drops the rest.
function tidy(local) {
  for (const key of ownKeys(local)) {
    const value = kept(key, local.getItem(key));
    if (value === null) local.removeItem(key);
    else local.setItem(key, value);
  }
}

function browserStorage() {
  try {
    const local = window.localStorage;
    local.length; // throws where storage is blocked
    return local;
  } catch {
    return null;
  }
}

// GraphiQL's Storage interface (getItem, setItem, removeItem, clear, length) over localStorage,
// keeping only what is listed at the top; `examples` are the tabs of a first visit.
export function createKeptStorage(examples, local = browserStorage()) {
  if (local) tidy(local);
  return {
    getItem(key) {
      if (key === TABS) return JSON.stringify(reopenedTabs(local, examples));
      if (key in FROM_TABS) {
        const state = reopenedTabs(local, examples);
        return FROM_TABS[key](state.tabs[state.activeTabIndex]) ?? null;
      }
      return local && isKept(key) ? local.getItem(key) : null;
    },
    setItem(key, value) {
      const keeping = kept(key, value);
      if (local && keeping !== null) local.setItem(key, keeping);
    },
    removeItem(key) {
      local?.removeItem(key);
    },
    clear() {
      if (local) for (const key of ownKeys(local)) local.removeItem(key);
    },
    get length() {
      return local ? ownKeys(local).length : 0;
    },
  };
}
