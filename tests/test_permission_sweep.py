"""Schema-wide permission sweep (issue 3): every root field, and every field of Account, User,
Site, Enforcement and Compliance, read from the served schema by introspection and called by each
kind of caller, API tokens included. What each caller must get is the table RULES below (and,
for tokens, TOKEN_RULES), written from API.md; every
field of those types must be classified in FIELDS, so a field added later fails this sweep until
someone decides who may read it.

Each answer is checked for the right code, for no data beside a refusal, and, for callers with no
right to the tree under test, for no name, id or email of that tree anywhere in the body.
Mutations run one per world (a tree of its own, `World`), the positive control last, so no
caller's call changes what the next one meets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from tests.support.api import PASSWORD, Api, Result
from tests.support.callers import (
    CALLERS,
    ENROLMENT_ONLY,
    MANAGE_TOKEN,
    MANAGER,
    MEMBER,
    NONE,
    OTHER_MANAGER,
    OTHER_MEMBER,
    PASSWORD_ONLY,
    READ_TOKEN,
    REVOKED,
    SESSION_CALLERS,
    TOKEN_CALLERS,
    Caller,
    World,
    build_world,
)
from tests.support.codes import totp_now

# --- Callers (tests/support/callers.py) ------------------------------------------------------

# Callers with no right to read the tree under test: its names, ids and emails never reach them.
OUTSIDERS = {NONE, REVOKED, PASSWORD_ONLY, ENROLMENT_ONLY, OTHER_MEMBER, OTHER_MANAGER}

# --- Outcomes and rules ----------------------------------------------------------------------

OK = "data"   # no error, and a value at the field
NULL = "null"  # no error, and null (`me` without a token)
ANSWERED = "answered"  # no error, a value or null (a nullable field that is null for these callers)


def full_session(others: dict[str, str]) -> dict[str, str]:
    """A field that needs a full session: what the four callers without one get, and the rest."""
    return {
        NONE: "UNAUTHENTICATED", REVOKED: "UNAUTHENTICATED", PASSWORD_ONLY: "TWO_FACTOR_REQUIRED",
        ENROLMENT_ONLY: "ENROLMENT_REQUIRED", **others,
    }


# The tree's account (site, user) for a caller of another tree is NOT_FOUND, as if there were none.
IN_TREE = {MEMBER: OK, OTHER_MEMBER: "NOT_FOUND", OTHER_MANAGER: "NOT_FOUND", MANAGER: OK}
EVERYONE_FULL = {MEMBER: OK, OTHER_MEMBER: OK, OTHER_MANAGER: OK, MANAGER: OK}
RULES: dict[str, dict[str, str]] = {
    # `me`: null without a token; an enrolment-only token reads its own identity and 2FA state.
    "me": {**full_session(EVERYONE_FULL), NONE: NULL, ENROLMENT_ONLY: OK},
    "me, full session": {**full_session(EVERYONE_FULL), NONE: NULL},
    "own trees": full_session(EVERYONE_FULL),
    "tree": full_session(IN_TREE),
    "tree, managers only": full_session({**IN_TREE, MEMBER: "FORBIDDEN"}),
    # Another user's 2FA state: the user themself and their managers. Recovery codes left and
    # memberships: the user themself only. Read here of the tree's manager (who switched
    # enforcement on: themself to the MANAGER caller) and of a member (pending enrolment).
    "the manager's 2FA state or own fields": full_session({**IN_TREE, MEMBER: "FORBIDDEN"}),
    "a member's own fields": full_session({**IN_TREE, MEMBER: "FORBIDDEN", MANAGER: "FORBIDDEN"}),
    # Mutations.
    "public": dict.fromkeys(SESSION_CALLERS, OK),
    "any session": {**dict.fromkeys(SESSION_CALLERS, OK), NONE: "UNAUTHENTICATED", REVOKED: "UNAUTHENTICATED"},
    "second step": {
        **dict.fromkeys(SESSION_CALLERS, "FORBIDDEN"),
        NONE: "UNAUTHENTICATED", REVOKED: "UNAUTHENTICATED", PASSWORD_ONLY: OK, ENROLMENT_ONLY: "ENROLMENT_REQUIRED",
    },
    # Enrolment-only tokens and full sessions; FORBIDDEN to whoever has 2FA on already.
    "enrol": {
        **full_session({MEMBER: "FORBIDDEN", OTHER_MEMBER: OK, OTHER_MANAGER: "FORBIDDEN", MANAGER: "FORBIDDEN"}),
        ENROLMENT_ONLY: OK,
    },
    # With one's own valid code: not while enforcement binds one (rule 3), nor without 2FA.
    "disable own 2FA": full_session({
        MEMBER: "TWO_FACTOR_ENFORCED", OTHER_MEMBER: "TWO_FACTOR_SETUP_REQUIRED", OTHER_MANAGER: OK,
        MANAGER: "TWO_FACTOR_ENFORCED",
    }),
    "own 2FA": full_session({MEMBER: OK, OTHER_MEMBER: "TWO_FACTOR_SETUP_REQUIRED", OTHER_MANAGER: OK, MANAGER: OK}),
    # Changing device: with one's own valid code, enforced or not; without 2FA, enrolTotp's job.
    "replace own device": full_session({MEMBER: OK, OTHER_MEMBER: "FORBIDDEN", OTHER_MANAGER: OK, MANAGER: OK}),
    # One's own password and sessions: any full session, with or without 2FA.
    "own sessions": full_session(EVERYONE_FULL),
    # On the tree's account: its managers only (any other account: FORBIDDEN, API.md).
    "manage": full_session({MEMBER: "FORBIDDEN", OTHER_MEMBER: "FORBIDDEN", OTHER_MANAGER: "FORBIDDEN", MANAGER: OK}),
    # From a session that passed the second factor only.
    "new API token": full_session({
        MEMBER: OK, OTHER_MEMBER: "TWO_FACTOR_SETUP_REQUIRED", OTHER_MANAGER: OK, MANAGER: OK,
    }),
    # Swept with an account's id (ARGUMENTS' "id"): malformed for a token's, once past the guards.
    "revoke an API token": full_session(dict.fromkeys(
        (MEMBER, OTHER_MEMBER, OTHER_MANAGER, MANAGER), "BAD_USER_INPUT")),
}

# The same rules for a nullable field (twoFactorDeadline: null for the world's users, none in grace).
RULES.update({
    f"{name} (nullable)": {caller: ANSWERED if outcome == OK else outcome for caller, outcome in RULES[name].items()}
    for name in ("me, full session", "the manager's 2FA state or own fields", "tree, managers only")
})

# API tokens act as their owner, the tree's manager: every query as the manager reads it; of the
# mutations only these (API.md), every other one FORBIDDEN, whatever it is, a new one included.
TOKEN_RULES: dict[str, dict[str, str]] = {
    "any session": {READ_TOKEN: OK, MANAGE_TOKEN: OK},  # logout: the token revokes itself
    "manage": {READ_TOKEN: "FORBIDDEN", MANAGE_TOKEN: OK},
    "revoke an API token": {READ_TOKEN: "BAD_USER_INPUT", MANAGE_TOKEN: "BAD_USER_INPUT"},
}


def expected(rule: str, caller: str, mutation: bool) -> str:
    if caller not in TOKEN_CALLERS:
        return RULES[rule][caller]
    return TOKEN_RULES.get(rule, {}).get(caller, "FORBIDDEN" if mutation else RULES[rule][MANAGER])

# Every field of the swept types, classified. Root fields name their rule; other types' fields
# name a class, which each route to the type (ROUTES) turns into a rule.
SWEPT_TYPES = ["Query", "Mutation", "Account", "Site", "Enforcement", "Compliance", "User"]
FIELDS: dict[tuple[str, str], str] = {
    ("Query", "me"): "me",
    ("Query", "accounts"): "own trees",
    ("Query", "account"): "tree",
    ("Query", "node"): "tree",
    ("Mutation", "login"): "public",
    ("Mutation", "verifyTwoFactor"): "second step",
    ("Mutation", "logout"): "any session",
    ("Mutation", "enrolTotp"): "enrol",
    ("Mutation", "confirmTotp"): "enrol",
    ("Mutation", "disableTotp"): "disable own 2FA",
    ("Mutation", "regenerateRecoveryCodes"): "own 2FA",
    ("Mutation", "replaceTotp"): "replace own device",
    ("Mutation", "setEnforcement"): "manage",
    ("Mutation", "resetMemberTwoFactor"): "manage",
    ("Mutation", "createApiToken"): "new API token",
    ("Mutation", "revokeApiToken"): "revoke an API token",
    ("Mutation", "changePassword"): "own sessions",
    ("Mutation", "revokeSession"): "own sessions",
    **{("Account", f): "tree" for f in (
        "id", "name", "parent", "children", "descendants", "sites", "viewerRole", "twoFactorEnforcement")},
    ("Account", "twoFactorCompliance"): "managers",
    ("Account", "auditEvents"): "managers",
    **{("Site", f): "tree" for f in ("id", "name", "account")},
    **{("Enforcement", f): "tree" for f in (
        "enforced", "enforcedHere", "source", "changedAt", "changedBy", "gracePeriodHours")},
    **{("Compliance", f): "managers" for f in ("totalUsers", "enrolledUsers", "pendingUsers")},
    **{("User", f): "identity" for f in ("id", "email", "name")},
    ("User", "twoFactorEnabled"): "2FA state",
    ("User", "twoFactorRequired"): "2FA state",
    # The user and their managers, but not among rule 2's five fields: not to an enrolment-only token.
    ("User", "twoFactorDeadline"): "2FA state, full session",
    ("User", "recoveryCodesRemaining"): "own",
    ("User", "memberships"): "own",
    ("User", "apiTokens"): "own",
    ("User", "sessions"): "own",
}


@dataclass(frozen=True)
class Route:
    """A path from the root to a type: a document with %s where the field goes."""

    type: str
    name: str
    document: str
    variables: Callable[[World], dict]
    path: tuple[str, ...]
    rules: dict[str, str]  # class -> rule


TREE_RULES = {"tree": "tree", "managers": "tree, managers only"}
ON_NORTH = "query($id: ID!) { account(id: $id) { %s } }"
ROUTES = [
    Route("Account", "account(id)", "query($id: ID!) { account(id: $id) { %s } }",
          lambda w: {"id": w.ids["dental"]}, ("account",), TREE_RULES),
    Route("Site", "node(id) on a site", "query($id: ID!) { node(id: $id) { ... on Site { %s } } }",
          lambda w: {"id": w.ids["hull"]}, ("node",), TREE_RULES),
    Route("Enforcement", "account(id).twoFactorEnforcement", ON_NORTH % "twoFactorEnforcement { %s }",
          lambda w: {"id": w.ids["north"]}, ("account", "twoFactorEnforcement"), TREE_RULES),
    Route("Compliance", "account(id).twoFactorCompliance", ON_NORTH % "twoFactorCompliance { %s }",
          lambda w: {"id": w.ids["north"]}, ("account", "twoFactorCompliance"), TREE_RULES),
    Route("User", "me", "{ me { %s } }", lambda w: {}, ("me",),
          {"identity": "me", "2FA state": "me", "2FA state, full session": "me, full session (nullable)",
           "own": "me, full session"}),
    Route("User", "changedBy (the tree's manager)", ON_NORTH % "twoFactorEnforcement { changedBy { %s } }",
          lambda w: {"id": w.ids["north"]}, ("account", "twoFactorEnforcement", "changedBy"),
          {"identity": "tree", "2FA state": "the manager's 2FA state or own fields",
           "2FA state, full session": "the manager's 2FA state or own fields (nullable)",
           "own": "the manager's 2FA state or own fields"}),
    Route("User", "pendingUsers (a member)", ON_NORTH % "twoFactorCompliance { pendingUsers { %s } }",
          lambda w: {"id": w.ids["north"]}, ("account", "twoFactorCompliance", "pendingUsers"),
          {"identity": "tree, managers only", "2FA state": "tree, managers only",
           "2FA state, full session": "tree, managers only (nullable)", "own": "a member's own fields"}),
]

# --- The world: two trees and a caller of each kind (tests/support/callers.py) --------------


# Values for required arguments, by name: those of the world's North tree, or the caller's own.
ARGUMENTS: dict[str, Callable[[World, Caller], Any]] = {
    "id": lambda w, c: w.ids["dental"],
    "accountId": lambda w, c: w.ids["north"],
    "userId": lambda w, c: w.ids[f"user:{w.emails['north-member']}"],
    "email": lambda w, c: w.emails["loner"],
    "password": lambda w, c: PASSWORD,
    "code": lambda w, c: totp_now(c.secret) if c.secret else "123456",
    "enforced": lambda w, c: True,
    "name": lambda w, c: "swept",
    "scopes": lambda w, c: ["READ"],
    "currentPassword": lambda w, c: PASSWORD,
    "newPassword": lambda w, c: "a-new-password-42",
}
# Where one field's argument differs from ARGUMENTS' value of its name.
FIELD_ARGUMENTS: dict[tuple[str, str], Callable[[World, Caller], Any]] = {
    ("revokeSession", "id"): lambda w, c: c.session_id or w.ids["dental"],  # one's own session
}

# --- Introspection and documents ---------------------------------------------------------------

INTROSPECT = """
query Sweep { __schema { types { name fields {
  name type { ...Ref } args { name defaultValue type { ...Ref } } } } } }
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""


async def swept_fields(api: Api) -> dict[str, list[dict]]:
    """The fields of the swept types, as the served schema tells them."""
    r = await api.gql(INTROSPECT)
    assert not r.errors, r.body
    types = {t["name"]: t["fields"] or [] for t in r.data["__schema"]["types"]}
    return {name: types[name] for name in SWEPT_TYPES}


def type_string(ref: dict) -> str:
    if ref["kind"] == "NON_NULL":
        return type_string(ref["ofType"]) + "!"
    if ref["kind"] == "LIST":
        return f"[{type_string(ref['ofType'])}]"
    return ref["name"]


def named(ref: dict) -> dict:
    return named(ref["ofType"]) if ref["kind"] in ("NON_NULL", "LIST") else ref


def selection(f: dict) -> str:
    """The field with its required arguments as variables, and `{ __typename }` below an object."""
    required = [a for a in f["args"] if a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None]
    args = ", ".join(f"{a['name']}: $arg_{a['name']}" for a in required)
    below = "" if named(f["type"])["kind"] in ("SCALAR", "ENUM") else " { __typename }"
    return f"{f['name']}{f'({args})' if args else ''}{below}"


def arguments(f: dict, world: World, caller: Caller) -> tuple[str, dict]:
    """The operation's variable definitions and values for a field's required arguments."""
    required = [a for a in f["args"] if a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None]
    values = {a["name"]: FIELD_ARGUMENTS.get((f["name"], a["name"]), ARGUMENTS.get(a["name"])) for a in required}
    unknown = [name for name, value in values.items() if value is None]
    assert not unknown, f"{f['name']}: add a value for {unknown} to ARGUMENTS"
    definitions = ", ".join(f"$arg_{a['name']}: {type_string(a['type'])}" for a in required)
    return (f"({definitions})" if definitions else ""), {
        f"arg_{name}": value(world, caller) for name, value in values.items()
    }


def with_variables(document: str, definitions: str) -> str:
    """Adds variable definitions to a document's operation."""
    if not definitions:
        return document
    operation, _, rest = document.partition("{")
    operation = operation.strip() or "query"
    if operation.endswith(")"):  # it has definitions already
        return f"{operation[:-1]}, {definitions[1:]} {{{rest}"
    return f"{operation}{definitions} {{{rest}"


# --- Checking one answer ---------------------------------------------------------------------


def values_at(data: Any, path: tuple[str, ...]) -> list[Any]:
    """The values at a path, through lists (one per element); a null on the way gives [None]."""
    if not path:
        return [data]
    if data is None:
        return [None]
    if isinstance(data, list):
        return [v for item in data for v in values_at(item, path)]
    return values_at(data.get(path[0]), path[1:])


def leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in leaves(value)]
    if isinstance(data, list):
        return [leaf for value in data for leaf in leaves(value)]
    return [data]


def mismatch(result: Result, expected: str, path: tuple[str, ...], world: World, caller: str) -> str | None:
    """What is wrong with an answer, or None."""
    if result.status >= 500:
        return f"HTTP {result.status}"
    if caller in OUTSIDERS:
        text = json.dumps(result.body)
        if leaked := [m for m in world.markers(caller) if m in text]:
            return f"leaked {leaked}"
    values = values_at(result.data, path)
    if expected == OK:
        if result.errors or not values or None in values:
            return f"expected data, got {result.body}"
    elif expected == NULL:
        if result.errors or values != [None]:
            return f"expected null, got {result.body}"
    elif expected == ANSWERED:
        if result.errors or not values:
            return f"expected an answer, got {result.body}"
    elif set(result.codes) != {expected}:
        return f"expected {expected}, got {result.codes or result.data}"
    elif any(leaf is not None for leaf in leaves(result.data)):
        return f"data beside {expected}: {result.data}"
    return None


async def probe(api: Api, world: World, caller: str, document: str, variables: dict, f: dict,
                path: tuple[str, ...], rule: str) -> str | None:
    definitions, values = arguments(f, world, world.callers[caller])
    document = with_variables(document % selection(f), definitions)
    result = await api.gql(document, {**variables, **values} or None, token=world.callers[caller].token)
    problem = mismatch(result, expected(rule, caller, document.startswith("mutation")), path, world, caller)
    return f"{caller} | {rule} | {document} -> {problem}" if problem else None


# --- The sweep -------------------------------------------------------------------------------


async def test_every_field_of_the_swept_types_is_classified(api):
    fields = await swept_fields(api)
    served = {(type_name, f["name"]) for type_name, fs in fields.items() for f in fs}
    assert sorted(served - set(FIELDS)) == [], "classify these fields in FIELDS (who may read them?)"
    assert sorted(set(FIELDS) - served) == [], "these fields are gone from the schema"
    assert {route.type for route in ROUTES} == set(SWEPT_TYPES) - {"Query", "Mutation"}
    for route in ROUTES:
        classes = {FIELDS[(route.type, f["name"])] for f in fields[route.type]}
        assert classes <= set(route.rules), (route.name, classes - set(route.rules))
    assert {rule for (t, _), rule in FIELDS.items() if t in ("Query", "Mutation")} <= set(RULES)
    assert all(set(row) == set(SESSION_CALLERS) for row in RULES.values())
    assert set(TOKEN_RULES) <= set(RULES) and all(set(row) <= set(TOKEN_CALLERS) for row in TOKEN_RULES.values())


async def test_every_query_field_answers_each_caller_by_the_rules(api, seed, clock):
    fields = await swept_fields(api)
    world = await build_world(api, seed, clock, 0)
    problems, probes = [], 0
    for caller in CALLERS:
        for f in fields["Query"]:
            rule = FIELDS[("Query", f["name"])]
            probes += 1
            problems.append(await probe(api, world, caller, "{ %s }", {}, f, (f["name"],), rule))
        for route in ROUTES:
            for f in fields[route.type]:
                rule = route.rules[FIELDS[(route.type, f["name"])]]
                probes += 1
                problems.append(await probe(
                    api, world, caller, route.document, route.variables(world), f, (*route.path, f["name"]), rule,
                ))
    assert [p for p in problems if p] == []
    assert probes >= len(CALLERS) * 40  # the sweep did sweep


async def test_every_mutation_answers_each_caller_by_the_rules(api, seed, clock):
    """One world per mutation; in it each caller calls it once, the tree's manager last."""
    fields = await swept_fields(api)
    problems = []
    for number, f in enumerate(fields["Mutation"], start=1):
        world = await build_world(api, seed, clock, number)
        rule = FIELDS[("Mutation", f["name"])]
        for caller in CALLERS:
            problems.append(await probe(api, world, caller, "mutation { %s }", {}, f, (f["name"],), rule))
    assert [p for p in problems if p] == []
    assert len(problems) == len(CALLERS) * len(fields["Mutation"])
