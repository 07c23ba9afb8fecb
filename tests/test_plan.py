"""The differential test of compiled execution (gql/plan.py): every query document of the test
suite, the README's walk-throughs, a few thousand hypothesis-graphql documents with a fixed seed,
and a handful aimed at the plan's hard parts, run through the plan and through graphql-core's own
executor against the same data and callers, must give byte-identical answers, errors included.

Two apps share the suite's database, one with MANDATE_COMPILED_EXECUTION on and one with it off;
each (document, variables, caller) is posted with the same body and token to one, then the other,
and the status and the raw bytes of the answers must be the same. Only queries are sent (a
mutation is never compiled, and would change the data between the two runs). What a query itself
writes cannot make the answers differ: each caller is seen once by both apps before any
comparison (a grace period's first sighting, an API token's lastUsedAt), and the domain's clock
stands still while the comparisons run (lastUsedAt is written again only a minute on).

One allowance, and only where graphql-core itself is shown to need it: sibling fields whose
statements race on PostgreSQL's pool fail in no fixed order. graphql-core keeps errors in the
order they are met, and once an error has nulled a position, the errors of fields still running
beneath it are kept only if they are met before the answer is written. So two answers that have
the same data, and errors that differ only in order or in errors beneath a nulled position, count
as `racing`, not as a difference (each corpus prints how many), when, both apps asked the same
again, one app is seen answering byte for byte as the other did, or the reference app answers in
another order and the errors are the same.

Each corpus asserts how many of its comparisons ran as a plan, so that none passes vacuously; and
two tests break the plan on purpose and require the comparison to tell.
"""

from __future__ import annotations

import ast
import functools
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphql
import httpx
import orjson
import pytest
from graphql import OperationDefinitionNode, OperationType
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from tortoise import connections

from mandate import db
from mandate.gql import execution, plan
from mandate.gql.ids import to_global_id
from mandate.gql.schema import build_schema
from mandate.models import clock as domain_clock
from tests.support.api import Api, client_with_settings
from tests.support.callers import CALLERS, ENROLMENT_ONLY, MANAGER, NONE, PASSWORD_ONLY, REVOKED, World, build_world
from tests.support.databases import backend_of, forget_backend
from tests.support.documents import TREE
from tests.support.generated import IDS, examples
from tests.support.people import enrolled
from tests.support.readme import BLOCKS

TESTS = Path(__file__).parent
SCHEMA = build_schema().as_str()
SERVED = graphql.build_schema(SCHEMA)

# Two callers beside the world's: a member of Clinic only and a site member of Hull. Both see
# North, where enforcement is switched on, only as their enforcement source (id and name).
CLINIC_MEMBER = "member of Clinic only"
SITE_MEMBER = "site member of Hull only"
ALL_CALLERS = [*CALLERS, CLINIC_MEMBER, SITE_MEMBER]


# -- one comparison ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request body: a document, its variables, the operation to run."""

    document: str
    variables: dict | None = None
    operation_name: str | None = None

    def body(self) -> bytes:
        payload: dict[str, Any] = {"query": self.document}
        if self.variables is not None:
            payload["variables"] = self.variables
        if self.operation_name is not None:
            payload["operationName"] = self.operation_name
        return orjson.dumps(payload)


@dataclass(frozen=True)
class Answer:
    status: int
    content: bytes

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        return cls(response.status_code, response.content)


@dataclass(frozen=True)
class Difference:
    case: Case
    caller: str
    compiled: Answer
    reference: Answer

    def __str__(self) -> str:
        return (f"caller {self.caller!r}, variables {self.case.variables}, operation {self.case.operation_name}:\n"
                f"{self.case.document}\n  plan:        {self.compiled.status} {self.compiled.content.decode()}\n"
                f"  graphql-core: {self.reference.status} {self.reference.content.decode()}")


@dataclass
class Tally:
    """What the comparisons met, so that a corpus cannot pass without reaching the resolvers."""

    compared: int = 0
    planned: int = 0       # of them, answered by a plan in the compiled app
    with_data: int = 0     # answers with data (partial or whole)
    with_errors: int = 0   # answers with data and at least one error
    several_errors: int = 0
    racing: int = 0        # answers alike but for errors graphql-core keeps in no fixed order, or not at all

    def count(self, answer: Answer, planned: bool) -> None:
        self.compared += 1
        self.planned += planned
        if answer.status != 200 or not answer.content.startswith(b"{"):
            return
        body = orjson.loads(answer.content)
        if body.get("data") is not None:
            self.with_data += 1
            errors = body.get("errors") or []
            self.with_errors += bool(errors)
            self.several_errors += len(errors) > 1


class Differential:
    """The compiled app and the reference app over the same database, and the callers' tokens."""

    def __init__(self, compiled: httpx.AsyncClient, reference: httpx.AsyncClient, tokens: dict[str, str | None]):
        self.compiled = compiled
        self.reference = reference
        self.tokens = tokens
        self.plans_run = 0  # plans the compiled app ran (counted at the seam, gql/execution.py)

    async def answers(self, case: Case, caller: str) -> tuple[Answer, Answer]:
        """The compiled app's answer, then the reference app's, to the same request."""
        token = self.tokens[caller]
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        compiled = Answer.of(await self.compiled.post("/graphql", content=case.body(), headers=headers))
        reference = Answer.of(await self.reference.post("/graphql", content=case.body(), headers=headers))
        return compiled, reference

    async def difference(self, case: Case, caller: str, tally: Tally | None = None) -> Difference | None:
        before = self.plans_run
        compiled, reference = await self.answers(case, caller)
        if tally is not None:
            tally.count(reference, self.plans_run > before)
        if compiled == reference:
            return None
        if await self.racing(case, caller, compiled, reference):
            if tally is not None:
                tally.racing += 1
            return None
        return Difference(case, caller, compiled, reference)

    async def racing(self, case: Case, caller: str, compiled: Answer, reference: Answer) -> bool:
        """Whether two answers differ only as graphql-core's own answers do from run to run (see
        the module's docstring): alike but for errors that race, and, both apps asked the same
        again, one of them answering as the other did, or the reference app changing only the
        order of the same errors."""
        if not alike_but_for_racing_errors(compiled, reference):
            return False
        seen_compiled, seen_reference = {compiled}, {reference}
        for _ in range(RETRIES):
            again_compiled, again_reference = await self.answers(case, caller)
            seen_compiled.add(again_compiled)
            seen_reference.add(again_reference)
            seen = seen_compiled | seen_reference
            if seen_compiled & seen_reference:
                return all(alike_but_for_racing_errors(answer, reference) for answer in seen)
            if len(seen_reference) > 1 and all(unordered(answer) == unordered(reference) for answer in seen):
                return True
        return False

    async def differences(self, cases: list[tuple[Case, list[str]]], tally: Tally) -> list[Difference]:
        found = []
        for case, callers in cases:
            for caller in callers:
                if (difference := await self.difference(case, caller, tally)) is not None:
                    found.append(difference)
        return found


RETRIES = 12


def unordered(answer: Answer) -> tuple:
    """An answer but for the order of its errors."""
    if answer.status != 200 or not answer.content.startswith(b"{"):
        return answer.status, answer.content
    body = orjson.loads(answer.content)
    errors = sorted(orjson.dumps(error) for error in body.pop("errors", None) or [])
    return answer.status, orjson.dumps(body), errors


def alike_but_for_racing_errors(one: Answer, other: Answer) -> bool:
    """Whether two answers have the same status and data, and errors that differ only in order
    or in errors beneath a nulled position (of fields whose siblings' failure nulled their parent
    while they still ran)."""
    if unordered(one) == unordered(other):
        return True
    if one.status != other.status or not (one.content.startswith(b"{") and other.content.startswith(b"{")):
        return False
    first, second = orjson.loads(one.content), orjson.loads(other.content)
    if first.get("data") != second.get("data"):
        return False
    errors = [sorted(orjson.dumps(error) for error in body.get("errors") or []) for body in (first, second)]
    left_over = [orjson.loads(error) for error in set(errors[0]) ^ set(errors[1])]
    return all(beneath_a_null(first.get("data"), error.get("path") or []) for error in left_over)


def beneath_a_null(data: Any, path: list) -> bool:
    """Whether a position lies beneath a null: the answer's data, or a position above it."""
    for key in path:
        if data is None:
            return True
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return False
    return False


@asynccontextmanager
async def differential_apps(monkeypatch, tokens: dict[str, str | None], **env: str):
    """The two apps, built under the same settings but compiled execution."""
    async with AsyncExitStack() as stack:
        compiled = await stack.enter_async_context(
            client_with_settings(monkeypatch, MANDATE_COMPILED_EXECUTION="1", **env))
        reference = await stack.enter_async_context(
            client_with_settings(monkeypatch, MANDATE_COMPILED_EXECUTION="0", **env))
        differential = Differential(compiled, reference, tokens)
        original = execution.plan_for

        def counted(executor, config):
            found = original(executor, config)
            differential.plans_run += found is not None
            return found

        monkeypatch.setattr(execution, "plan_for", counted)
        yield differential


# -- the world the documents run against -----------------------------------------------------------


@dataclass
class Setting:
    world: World
    tokens: dict[str, str | None]
    ids: dict[str, str] = field(default_factory=dict)


async def seed_setting(api: Api, seed, clock) -> Setting:
    world = await build_world(api, seed, clock, 0)
    clinic_member, site_member = world.email("clinic-member"), world.email("hull-visitor")
    await seed({
        "users": [{"email": clinic_member}, {"email": site_member}],
        "accounts": [{"name": world.name("North"), "children": [{
            "name": world.name("Dental"), "sites": [{"name": world.name("Hull"), "members": [site_member]}],
            "children": [{"name": world.name("Clinic"), "members": [clinic_member]}],
        }]}],
    })
    tokens = {who: caller.token for who, caller in world.callers.items()}
    tokens[CLINIC_MEMBER] = (await enrolled(api, clinic_member, clock)).token
    tokens[SITE_MEMBER] = (await enrolled(api, site_member, clock)).token
    return Setting(world, tokens, dict(world.ids))


@pytest.fixture(scope="module", autouse=True)
async def without_postgres_jit(database_url):
    """PostgreSQL's JIT off for this module's database while it runs: PostgreSQL 15 compiles the
    caller's statement (models/callers.py; its estimate is over jit_above_cost on the suite's
    near-empty tables) afresh on every request, some 70 ms of each, which would leave room for a
    few hundred comparisons only. JIT changes no answer; the module's last test puts it back."""
    if backend_of(database_url) != "postgres":
        yield
        return

    async def reconnected(setting: str) -> None:
        name = (await connections.get("default").execute_query_dict("SELECT current_database() AS name"))[0]["name"]
        await connections.get("default").execute_script(f'ALTER DATABASE "{name}" {setting}')
        await db.close()  # (the pool's connections keep the setting they began with)
        await forget_backend()
        await db.init(database_url)

    await reconnected("SET jit = off")
    yield
    await reconnected("RESET jit")


@pytest.fixture
async def setting(api, seed, clock, monkeypatch) -> Setting:
    """The world seeded, every caller seen once, and the domain's clock standing still."""
    found = await seed_setting(api, seed, clock)
    for token in found.tokens.values():
        r = await api.gql("{ me { id twoFactorDeadline } }", token=token)
        assert r.status == 200, r.body
    still = domain_clock.time()
    monkeypatch.setattr(domain_clock, "time", lambda: still)
    return found


@pytest.fixture
async def differential(setting, monkeypatch):
    async with differential_apps(monkeypatch, setting.tokens) as found:
        # Both apps see each caller once before any comparison (nothing left to write first).
        for caller in ALL_CALLERS:
            await found.answers(Case("{ me { id twoFactorDeadline apiTokens { lastUsedAt } } }"), caller)
        yield found


# -- corpus 1: the test suite's own documents -------------------------------------------------------


def query_operations(document: str) -> list[OperationDefinitionNode] | None:
    """The query operations of a document that parses, else None."""
    try:
        parsed = graphql.parse(document)
    except graphql.GraphQLError:
        return None
    return [d for d in parsed.definitions
            if isinstance(d, OperationDefinitionNode) and d.operation is OperationType.QUERY]


def string_constants(tree: ast.Module) -> dict[str, str]:
    """A module's top-level `NAME = "text"`."""
    return {node.targets[0].id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


SUPPORT_CONSTANTS = {f"tests.support.{path.stem}": string_constants(ast.parse(path.read_text()))
                     for path in sorted((TESTS / "support").glob("*.py"))}


def known_names(tree: ast.Module) -> dict[str, str]:
    """The string constants a module's f-strings may name: its own, and those it imports from tests/support."""
    known = string_constants(tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module in SUPPORT_CONSTANTS:
            constants = SUPPORT_CONSTANTS[node.module]
            known |= {alias.asname or alias.name: constants[alias.name]
                      for alias in node.names if alias.name in constants}
    return known


def resolved(node: ast.JoinedStr, known: dict[str, str], hole: str | None = None) -> str | None:
    """An f-string whose every hole is a plain name of a known string constant, as it reads; else
    None (or, given `hole`, with that text in each hole that is not)."""
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(value.value)
        elif (isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name)
              and value.conversion == -1 and value.format_spec is None and value.value.id in known):
            parts.append(known[value.value.id])
        elif hole is not None:
            parts.append(hole)
        else:
            return None
    return "".join(parts)


def suite_documents() -> tuple[list[str], int]:
    """Every string constant of tests/ (and f-string of known constants only) that parses and holds
    a query, deduplicated; and the number of f-strings left out that would parse as one but for
    their holes."""
    found: set[str] = set()
    left_out = 0
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == Path(__file__).name:
            continue  # this file's own documents are corpus 4
        tree = ast.parse(path.read_text(), filename=str(path))
        known = known_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = resolved(node, known)
                if text is None:
                    left_out += bool(query_operations(resolved(node, known, hole="X") or ""))
                    continue
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            if "{" in text and query_operations(text):
                found.add(text)
    return sorted(found), left_out


def candidates(type_node: graphql.TypeNode, ids: dict[str, str]) -> list[Any] | None:
    """Values to try for a variable of this type, None for a type not filled here."""
    if isinstance(type_node, graphql.NonNullTypeNode):
        return candidates(type_node.type, ids)
    if isinstance(type_node, graphql.ListTypeNode):
        inner = candidates(type_node.type, ids)
        return None if inner is None else [[value] for value in inner if value is not None]
    named = SERVED.get_type(type_node.name.value)
    if named is None:
        return None
    values: list[Any]
    if named.name == "ID":
        values = [ids["north"], ids["dental"], ids["leeds"], ids["south"],
                  ids["user:" + "north-member.w0@example.org"], to_global_id("Account", 10**12)]
    elif named.name == "String":
        values = ["YXVkaXQ6MQ==", "", "not a cursor"]
    elif named.name == "Int":
        values = [2, 0, 1001]
    elif named.name == "Boolean":
        values = [True, False]
    elif isinstance(named, graphql.GraphQLEnumType):
        values = list(named.values)
    else:
        return None
    return values


def bindings(operation: OperationDefinitionNode, ids: dict[str, str]) -> list[dict] | None:
    """Variable sets for the operation: the i-th of each variable's candidates in the i-th set
    (so every candidate is tried, and a Boolean both ways); None when a type cannot be filled."""
    definitions = operation.variable_definitions or ()
    if not definitions:
        return [None]  # type: ignore[list-item]
    options = {}
    for definition in definitions:
        values = candidates(definition.type, ids)
        if values is None:
            return None
        if not isinstance(definition.type, graphql.NonNullTypeNode):
            values = [*values, None]
        options[definition.variable.name.value] = values
    count = max(len(values) for values in options.values())
    return [{name: values[i % len(values)] for name, values in options.items()} for i in range(count)]


# Callers refused before any resolver reads an argument: the first variable set is enough for them.
REFUSED = [NONE, REVOKED, PASSWORD_ONLY, ENROLMENT_ONLY]


def cases_of(documents: list[str], ids: dict[str, str]) -> tuple[list[tuple[Case, list[str]]], int]:
    """The cases of the documents' query operations, each with its callers (every caller for the
    first variable set, those past the refusals for the others), and how many operations were skipped."""
    cases, skipped = [], 0
    for document in documents:
        operations = query_operations(document) or []
        several = len(graphql.parse(document).definitions) > 1
        for operation in operations:
            if several and operation.name is None:
                skipped += 1  # an anonymous operation among others cannot be chosen
                continue
            sets = bindings(operation, ids)
            if sets is None:
                skipped += 1
                continue
            name = operation.name.value if several and operation.name else None
            reaching = [caller for caller in ALL_CALLERS if caller not in REFUSED]
            cases += [(Case(document, variables, name), reaching if i else ALL_CALLERS)
                      for i, variables in enumerate(sets)]
    return cases, skipped


async def test_the_suites_documents_answer_alike(differential, setting):
    documents, formatted = suite_documents()
    cases, skipped = cases_of(documents, setting.ids)
    tally = Tally()
    started = time.perf_counter()
    found = await differential.differences(cases, tally)
    elapsed = time.perf_counter() - started
    print(f"suite: {len(documents)} documents, {len(cases)} cases ({skipped} operations skipped, "
          f"{formatted} f-strings left out), {tally} in {elapsed:.1f} s")
    assert found == [], "\n\n".join(map(str, found[:5]))
    assert len(documents) >= 100 and tally.planned >= 1000 and tally.with_errors >= 50, tally


# -- corpus 2: the README's walk-throughs -----------------------------------------------------------


def readme_documents() -> list[str]:
    """Each query operation of the README's blocks, as its own document (as tests/test_readme.py reads them)."""
    found = []
    for block in BLOCKS:
        for definition in graphql.parse(block).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.operation is OperationType.QUERY:
                found.append(block[definition.loc.start:definition.loc.end])
    return found


async def test_the_readmes_walkthroughs_answer_alike(differential, setting):
    documents = readme_documents()
    cases, skipped = cases_of(documents, setting.ids)
    tally = Tally()
    found = await differential.differences(cases, tally)
    print(f"README: {len(documents)} documents, {len(cases)} cases ({skipped} skipped), {tally}")
    assert found == [], "\n\n".join(map(str, found[:5]))
    assert skipped == 0 and len(documents) >= 6 and tally.planned >= 50, tally


# -- corpus 3: hypothesis-graphql's documents -------------------------------------------------------

# Ids of rows the world has and has not (tests/support/generated.py), and strings a client might
# send. `node` (an interface, never compiled) is left out, so that every document reaches the plan.
STRINGS = ["YXVkaXQ6MQ==", "Account:1", "", "x"]
SCALARS = {
    "ID": st.one_of(st.sampled_from(IDS), st.text(max_size=8)).map(nodes.String),
    "String": st.sampled_from(STRINGS).map(nodes.String),
}
GENERATED = 2500
ROOT_FIELDS = [name for name in SERVED.query_type.fields if name != "node"]  # type: ignore[union-attr]


@functools.cache
def generated_documents() -> tuple[str, ...]:
    """Generated once for both databases (a module's fixture is set up again for each)."""
    # (each document once: the derandomised draw repeats some)
    return tuple(dict.fromkeys(examples(queries(SCHEMA, fields=ROOT_FIELDS, custom_scalars=SCALARS), GENERATED)))


@pytest.fixture
def generated() -> tuple[str, ...]:
    return generated_documents()


async def test_generated_documents_answer_alike(differential, generated):
    # Each document as the manager (who sees most) and as one other caller, in turn.
    others = [caller for caller in ALL_CALLERS if caller != MANAGER]
    cases = [(Case(document), [MANAGER, others[i % len(others)]]) for i, document in enumerate(generated)]
    tally = Tally()
    started = time.perf_counter()
    found = await differential.differences(cases, tally)
    elapsed = time.perf_counter() - started
    print(f"generated: {len(generated)} documents, {tally} in {elapsed:.1f} s")
    assert found == [], "\n\n".join(map(str, found[:5]))
    assert len(generated) >= 2000 and tally.planned >= 3000 and tally.with_errors >= 100, tally


# -- corpus 4: the plan's hard parts ----------------------------------------------------------------

CONDITIONS = """
query($yes: Boolean!, $no: Boolean!) {
  accounts {
    id
    name @skip(if: $yes)
    sites @include(if: $no) { id name }
    ... @include(if: $yes) { viewerRole children { id } }
    ...Below @skip(if: $no)
    children @include(if: $yes) { name }
  }
  me @skip(if: $no) { email }
}
fragment Below on Account { children { id sites { id } } }"""

HARD = [
    # aliases of one field with different sub-selections
    "{ a: accounts { id name } b: accounts { id sites { name } children { name viewerRole } } c: me { id } d: me { email } }",
    # the same field selected twice, merged (sub-selections, and a leaf twice)
    "{ accounts { id children { id } name children { name sites { id } } id children { sites { name } } } }",
    # fragments and inline fragments, on the concrete type and on the Node interface
    """
    query Fragments {
      accounts { ...Account children { ...Account ... on Account { viewerRole } ... on Node { id } } }
      me { ... on User { email } ... on Node { id } ...Person }
    }
    fragment Account on Account { id name sites { ...Site } ...Identified }
    fragment Site on Site { id name account { ...Identified name } }
    fragment Identified on Node { id }
    fragment Person on User { name memberships { role account { ...Identified } } }""",
    # a fragment spread twice, and one spread inside itself through an inline fragment
    "{ accounts { ...A ...A ... { ...A } } } fragment A on Account { id children { id } }",
    # @skip/@include with literal conditions
    "{ accounts { id @skip(if: true) name @include(if: false) viewerRole @include(if: true) "
    "... @skip(if: false) { sites { id } } } me @skip(if: false) @include(if: true) { email } }",
    # __typename at several levels, aliased too
    """{ __typename t: __typename me { __typename id memberships { __typename account { __typename } } }
       accounts { __typename sites { __typename account { __typename } }
                  twoFactorEnforcement { __typename source { __typename id } } } }""",
    # errors in lists, several in one answer (order matters), propagating up to the root
    "{ accounts { id twoFactorEnforcement { changedBy { email twoFactorDeadline recoveryCodesRemaining } } } me { email } }",
    "{ accounts { id children { id twoFactorCompliance { totalUsers } } } me { email } }",
    "{ accounts { id descendants { name auditEvents(first: 2) { edges { node { action } } } } } }",
    """{ accounts { id twoFactorCompliance { totalUsers enrolledUsers
                    pendingUsers { email sessions { id } apiTokens { id } } } } }""",
    "{ accounts { twoFactorCompliance { pendingUsers(first: 1001) { email } } } me { id } }",
    "{ accounts { twoFactorCompliance { pendingUsers(first: 1, after: \"bad\") { email } } } }",
    "{ accounts { descendants { twoFactorCompliance { totalUsers } } } me { email } }",
    # a field's error at the root, and a sibling answered beside it
    '{ me { email } account(id: "QWNjb3VudDo5OTk5OTk=") { id } accounts { id } }',
    '{ x: account(id: "U2l0ZTox") { id } y: account(id: "") { id } me { id } }',
    # the user fields, whoever asks
    """{ me { id email name twoFactorEnabled twoFactorRequired twoFactorDeadline recoveryCodesRemaining
              sessions { status current userAgent clientAddress } memberships { role account { name } }
              apiTokens { name scopes lastUsedAt } } }""",
    # a tree three levels down (the ahead-loading path), and descendants beside children
    TREE,
    "{ accounts { descendants { id name sites { name } children { name } parent { name } } } }",
]

# Errors under non-null fields that null their parent: for a member of Clinic only, or a site
# member of Hull only, North (where enforcement is on) is only their accounts' source, shown by
# id and name; anything else of it is refused. Run with the id of each account of the tree.
SOURCE_ONLY = [
    "query($id: ID!) { account(id: $id) { id twoFactorEnforcement { enforced source { id name children { id } } } } }",
    "query($id: ID!) { account(id: $id) { id twoFactorEnforcement { source { id twoFactorEnforcement { enforced } } } } }",
    "query($id: ID!) { account(id: $id) { twoFactorEnforcement { source { id parent { id } viewerRole sites { id } } } } }",
    "query($id: ID!) { account(id: $id) { twoFactorEnforcement { source { parent { id } descendants { id } } } } }",
    """query($id: ID!) { a: account(id: $id) { twoFactorEnforcement { source { parent { name } } } }
                      b: account(id: $id) { twoFactorEnforcement { source { sites { name } } } }
                      c: account(id: $id) { twoFactorEnforcement { s: source { id } t: source { name parent { id } } } } }""",
    """query($id: ID!) { account(id: $id) { id sites { id account { twoFactorEnforcement { source {
                        twoFactorCompliance { totalUsers } } } } } } }""",
]

# The same text with every value of its condition variables: the plan caches per condition values.
CONDITION_CASES = [Case(CONDITIONS, {"yes": yes, "no": no}) for yes in (True, False) for no in (True, False)]


async def test_the_plans_hard_parts_answer_alike(differential, setting):
    tree = [setting.ids[name] for name in ("north", "dental", "clinic", "south")]
    cases = [Case(document) for document in HARD] + CONDITION_CASES + CONDITION_CASES[::-1]
    cases += [Case(document, {"id": account}) for document in SOURCE_ONLY for account in tree]
    tally = Tally()
    found = await differential.differences([(case, ALL_CALLERS) for case in cases], tally)
    print(f"hard parts: {len(cases)} cases, {tally}")
    assert found == [], "\n\n".join(map(str, found[:5]))
    assert tally.planned == tally.compared, tally  # every one of them is compiled
    assert tally.several_errors >= 5 and tally.with_errors >= 30, tally




# -- past the object limit --------------------------------------------------------------------------


async def test_answers_past_the_object_limit_are_alike(setting, monkeypatch):
    """MANDATE_MAX_RESULT_OBJECTS lowered in both apps: the tree is refused alike by both, a
    smaller document is answered alike."""
    async with differential_apps(monkeypatch, setting.tokens, MANDATE_MAX_RESULT_OBJECTS="6") as differential:
        for caller in ALL_CALLERS:
            await differential.answers(Case("{ me { id } }"), caller)
        tally = Tally()
        cases = [Case(TREE), Case("{ accounts { id sites { id } } }"), Case("{ accounts { id name } }"),
                 Case("{ accounts { descendants { id } } me { id } }"),
                 Case("{ a: accounts { id } b: accounts { id } c: accounts { id } d: accounts { id } }")]
        refusals = 0
        for case in cases:
            for caller in ALL_CALLERS:
                before = differential.plans_run
                compiled, reference = await differential.answers(case, caller)
                assert compiled == reference, str(Difference(case, caller, compiled, reference))
                refusals += b"QUERY_TOO_COMPLEX" in reference.content
                tally.count(reference, differential.plans_run > before)
        print(f"object limit: {tally}, {refusals} refused past the limit")
        assert refusals >= 4 and tally.with_data >= 10 and tally.planned == tally.compared, (refusals, tally)


# -- the plan is really in use, and the comparison really compares ----------------------------------


async def test_queries_run_as_plans_only_where_compiled_execution_is_on(differential, setting, monkeypatch):
    case = Case(TREE)
    before = differential.plans_run
    compiled, reference = await differential.answers(case, MANAGER)
    assert differential.plans_run == before + 1  # the compiled app's request, not the other's
    assert compiled == reference and compiled.status == 200 and b'"errors"' not in compiled.content

    def refused(self, serially=None):
        raise RuntimeError("graphql-core's executor ran")

    # graphql-core's own execution of an operation, under both apps' executors
    generic = next(c for c in StrawberryGraphQLCoreExecutionContext.__mro__ if "execute_operation" in vars(c))
    monkeypatch.setattr(generic, "execute_operation", refused)
    planned, unplanned = await differential.answers(case, MANAGER)
    assert planned == compiled  # the plan answers by itself
    assert unplanned != reference and b'"data"' not in unplanned.content, unplanned  # its executor failed
    # What no plan covers (`node`, of an interface) needs graphql-core's executor in the compiled app too.
    node, _ = await differential.answers(Case(f'{{ node(id: "{setting.ids["north"]}") {{ id }} }}'), MANAGER)
    assert setting.ids["north"].encode() not in node.content, node


def swallow_errors_of_non_null_fields(monkeypatch):
    """The plan no longer nulls the parent of a non-null field that failed."""
    def handle_field_error(self, raw_error, return_type, nodes, path):
        self.add_error(graphql.located_error(raw_error, nodes, path.as_list()), path)

    monkeypatch.setattr(plan.Run, "handle_field_error", handle_field_error)


def put_each_error_first(monkeypatch):
    """The plan keeps its errors in the reverse order."""
    add_error = plan.Run.add_error

    def reversed_add_error(self, error, path):
        count = len(self.errors)
        add_error(self, error, path)
        if len(self.errors) > count:
            self.errors.insert(0, self.errors.pop())

    monkeypatch.setattr(plan.Run, "add_error", reversed_add_error)


def drop_each_error(monkeypatch):
    """The plan keeps no error (and so nulls a failed field without saying why)."""
    monkeypatch.setattr(plan.Run, "add_error", lambda self, error, path: None)


@pytest.mark.parametrize(("sabotage", "document", "caller", "account"), [
    (swallow_errors_of_non_null_fields, SOURCE_ONLY[0], SITE_MEMBER, "dental"),
    # (two errors met before any statement, so in one order whatever the database)
    (put_each_error_first, "{ accounts { id } me { email } }", REVOKED, None),
    # (an error at a position whose parent stands: no race excuses its loss)
    (drop_each_error, f'{{ account(id: "{to_global_id("Account", 10**12)}") {{ id }} me {{ email }} }}', MANAGER, None),
], ids=["null propagation dropped", "error order reversed", "an error dropped"])
async def test_the_comparison_tells_a_plan_that_answers_otherwise(differential, setting, monkeypatch,
                                                                  sabotage, document, caller, account):
    case = Case(document, {"id": setting.ids[account]} if account else None)
    assert await differential.difference(case, caller) is None
    sabotage(monkeypatch)
    found = await differential.differences([(case, ALL_CALLERS)], Tally())
    assert caller in [difference.caller for difference in found], "\n\n".join(map(str, found))
    assert found[0].compiled.status == found[0].reference.status == 200
