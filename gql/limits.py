"""Limits on work (API.md): how deep and wide a document may be, how many objects an answer may
hold, and how long a request may work.

Validation itself must be cheap whatever the document: the depth and alias limits count through
fragments with each fragment worked out once (`SelectionFold`), and graphql-core's
OverlappingFieldsCanBeMergedRule gets a smaller budget of comparisons (`bound_field_merging`);
those refusals are GRAPHQL_VALIDATION_FAILED, as any invalid document's.

Two defences of the answer's size, one code, QUERY_TOO_COMPLEX, and never partial data:

- Before execution, `NoReturnIntoLists` refuses the shape that multiplies without bound: a list
  reached again below a field that leads back to an object already reached (`parent`,
  `account`, `source`, ...), itself below a list. Each element of the outer list walks back to
  shared objects and fans out from them again, so every repetition multiplies the answer.
- During execution, every completed value of an object type is counted against
  MANDATE_MAX_RESULT_OBJECTS (graphql-core's public `is_type_of` hook is called once per object
  value), and the request's own sync work is timed against WORK_SECONDS; the first object past
  either refuses the request and cancels its execution. Work runs in stretches between awaits
  (each list level waits for its batch load), so other callers and /healthz are answered between
  them.
"""

from __future__ import annotations

import asyncio
import time
from functools import lru_cache
from typing import Any, Awaitable, Callable

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_composite_type,
    is_list_type,
    is_object_type,
)

from graphql.validation.rules import overlapping_fields_can_be_merged

from mandate.gql.documents import SelectionFold
from mandate.models.errors import QUERY_TOO_COMPLEX, MandateError

WORK_SECONDS = 2.0  # API.md: "its answer or refusal comes within 2 seconds of work"
# A request that waits (on the database) rather than works is ended by the wall clock, later.
WAIT_SECONDS = 10.0
BREATHE_AFTER_SECONDS = 0.05  # a stretch of sync work past this lets other callers in at the next level
CHECK_EVERY = 256  # objects between looks at the clock (a power of two: a mask, not a division)

TOO_MANY_OBJECTS = "The answer would hold more objects than one request may return: ask for fewer levels or fields."
TOO_LONG = "The request took longer than one request may work: ask for fewer levels or fields."
SHAPE = (
    "The document asks for the list `{list}` again below `{back}`, which leads back to objects "
    "already reached below a list: its answer would multiply with every repetition."
)


# -- validation: depth, aliases, field merging ----------------------------------------------------

# The frontend's three-level tree with sites and enforcement sources counts 5 here; room to
# spare for nesting more levels. (Introspection fields are not counted: graphql-core's own
# introspection-depth rule bounds those.)
MAX_DEPTH = 15
MAX_ALIASES = 30
# graphql-core's budget for OverlappingFieldsCanBeMergedRule's comparisons, past which it aborts
# validation ("Validation aborted."). Its default, 500,000, is 2 to 4 seconds of work here; the
# standard introspection query and the frontend's tree spend none of it.
FIELD_MERGING_BUDGET = 50_000


def bound_field_merging() -> None:
    # graphql-core's documented knob: a module attribute, read when the rule starts on a document.
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = FIELD_MERGING_BUDGET


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


class _Depth(SelectionFold[int]):
    """Levels of fields below a selection set, as strawberry's QueryDepthLimiter counts them: a
    leaf is 0, a field with selections one more than they; introspection fields count 0."""

    def combine(self, values: list[int]) -> int:
        return max(values, default=0)

    def field(self, node: FieldNode, below: int | None) -> int:
        return 0 if below is None else 1 + below

    def walks_into(self, node: FieldNode) -> bool:
        return not node.name.value.startswith("__")


class _Aliases(SelectionFold[int]):
    """Aliased fields below a selection set, a fragment's counted each time it is spread."""

    def combine(self, values: list[int]) -> int:
        return sum(values)

    def field(self, node: FieldNode, below: int | None) -> int:
        return (node.alias is not None) + (below or 0)


class DepthWithinLimit(ValidationRule):
    """No operation nests fields deeper than MAX_DEPTH (strawberry's QueryDepthLimiter's rule and
    message, without walking every path through the fragments)."""

    def enter_document(self, node: DocumentNode, *_args) -> None:
        depth = _Depth(SelectionFold.fragments_of(node))
        for operation in _operations(node):
            if depth.of(operation.selection_set) > MAX_DEPTH:
                name = operation.name.value if operation.name else "anonymous"
                self.report_error(GraphQLError(f"'{name}' exceeds maximum operation depth of {MAX_DEPTH}", operation))


class AliasesWithinLimit(ValidationRule):
    """At most MAX_ALIASES aliases in the document's operations (strawberry's MaxAliasesLimiter's
    rule and message, without walking every path through the fragments)."""

    def enter_document(self, node: DocumentNode, *_args) -> None:
        aliases = _Aliases(SelectionFold.fragments_of(node))
        total = sum(aliases.of(operation.selection_set) for operation in _operations(node))
        if total > MAX_ALIASES:
            self.report_error(GraphQLError(f"{total} aliases found. Allowed: {MAX_ALIASES}"))


# -- before execution: the shape ------------------------------------------------------------------

# Where a selection stands: no list above; below a list; below a list and then back.
FREE, BELOW_LIST, WENT_BACK = range(3)


@lru_cache(maxsize=8)
def _parts(schema: GraphQLSchema) -> frozenset[str]:
    """Object types that are a part of one parent: returned by exactly one field of the schema,
    and nothing with an identity of its own (no interface). A single-object field of such a
    type leads down (`twoFactorEnforcement`); every other one may lead back (`parent`)."""
    returned_by: dict[str, int] = {}
    for named in schema.type_map.values():
        for field in getattr(named, "fields", {}).values() if is_object_type(named) or is_abstract_type(named) else ():
            name = get_named_type(field.type).name
            returned_by[name] = returned_by.get(name, 0) + 1
    return frozenset(
        name for name, count in returned_by.items()
        if count == 1 and is_object_type(schema.type_map[name]) and not schema.type_map[name].interfaces
    )


def _field_type(schema: GraphQLSchema, parent: GraphQLNamedType, name: str):
    field = getattr(parent, "fields", {}).get(name)
    return field.type if field is not None else None


class _Walk:
    """One document's walk: the first list field reached again after going back, if any."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.parts = _parts(schema)
        self.fragments = fragments
        self.done: dict[tuple[str, int], tuple[FieldNode, str] | None] = {}

    def selection_set(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None, state: int, back: str
    ) -> tuple[FieldNode, str] | None:
        for selection in selection_set.selections if selection_set and parent else ():
            if isinstance(selection, FieldNode):
                found = self.field(selection, parent, state, back)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                found = self.selection_set(selection.selection_set, inner, state, back)
            else:
                found = self.fragment(selection, state, back)
            if found:
                return found
        return None

    def field(self, node: FieldNode, parent: GraphQLNamedType, state: int, back: str) -> tuple[FieldNode, str] | None:
        field_type = _field_type(self.schema, parent, node.name.value)
        if field_type is None or not is_composite_type(get_named_type(field_type)):
            # Leaves, unknown fields (another rule's error), and introspection's meta fields,
            # which graphql-core's introspection depth rule bounds (the answer is the schema's).
            return None
        named = get_named_type(field_type)
        if is_list_type(get_nullable_type(field_type)):
            if state == WENT_BACK:
                return node, back
            state = BELOW_LIST
        elif state == BELOW_LIST and named.name not in self.parts:
            state, back = WENT_BACK, f"{parent.name}.{node.name.value}"
        return self.selection_set(node.selection_set, named, state, back)

    def fragment(self, spread: FragmentSpreadNode, state: int, back: str) -> tuple[FieldNode, str] | None:
        # Once per fragment and state, so fragments spread many times cost no more; a fragment
        # spread inside itself is NoFragmentCycles' error.
        definition = self.fragments.get(spread.name.value)
        key = (spread.name.value, state)
        if definition is None or key in self.done:
            return self.done.get(key)
        self.done[key] = None
        parent = self.schema.get_type(definition.type_condition.name.value)
        self.done[key] = found = self.selection_set(definition.selection_set, parent, state, back)
        return found


class NoReturnIntoLists(ValidationRule):
    def enter_document(self, node: DocumentNode, *_args) -> None:
        schema = self.context.schema
        fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}
        walk = _Walk(schema, fragments)
        for operation in node.definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            found = walk.selection_set(operation.selection_set, schema.get_root_type(operation.operation), FREE, "")
            if found:
                list_node, back = found
                self.report_error(GraphQLError(
                    SHAPE.format(list=list_node.name.value, back=back), list_node,
                    extensions={"code": QUERY_TOO_COMPLEX},
                ))
                return


# -- during execution: objects and time -----------------------------------------------------------


class Work:
    """One request's spending: the objects of its answer, and the seconds of its own sync work.

    Work is counted in stretches: from the first object a stretch completes to the loop's next
    turn (a callback queued then), so neither waits on the database nor other requests' turns
    count against it. The first object past a limit refuses the request: the execution is
    cancelled (no further work) and every object after it fails at once."""

    def __init__(self, max_objects: int) -> None:
        self.max_objects = max_objects
        self.objects = 0
        self.spent = 0.0  # seconds of finished stretches
        self.refusal: MandateError | None = None
        self.execution: asyncio.Future | None = None  # cancelled on refusal
        self._stretch_began: float | None = None

    def spend_object(self) -> None:
        if self.refusal is not None:
            raise self.refusal
        self.objects += 1
        if self.objects > self.max_objects:
            self.refuse(TOO_MANY_OBJECTS)
        if self._stretch_began is None:  # the first object since the loop's last turn
            self._stretch_began = time.perf_counter()
            asyncio.get_running_loop().call_soon(self._stretch_ended)
        elif not self.objects & (CHECK_EVERY - 1):
            if self.spent + time.perf_counter() - self._stretch_began > WORK_SECONDS:
                self.refuse(TOO_LONG)

    def refuse(self, message: str) -> None:
        if self.refusal is None:
            self.refusal = MandateError(QUERY_TOO_COMPLEX, message)
            if self.execution is not None:
                self.execution.cancel()  # takes effect at its next await: nothing more is loaded
        raise self.refusal

    def out_of_breath(self) -> bool:
        """Whether this request's stretch of work has held the loop past BREATHE_AFTER_SECONDS."""
        return self._stretch_began is not None and time.perf_counter() - self._stretch_began > BREATHE_AFTER_SECONDS

    async def breathe(self) -> None:
        """Let the loop's other callers in first, when this request's stretch of work has held it
        past BREATHE_AFTER_SECONDS (a level about to be completed would hold it longer still)."""
        while self.out_of_breath():
            await asyncio.sleep(0)  # again after each turn: one long stretch per turn of the loop

    def _stretch_ended(self) -> None:
        self.spent += time.perf_counter() - self._stretch_began
        self._stretch_began = None


def _counted(original: Callable[[Any, GraphQLResolveInfo], Any] | None):
    def is_type_of(value: Any, info: GraphQLResolveInfo) -> Any:
        info.context.work.spend_object()
        return original(value, info) if original is not None else True

    return is_type_of


def count_objects(schema: GraphQLSchema) -> None:
    """Count every completed object value of the schema's own types against the request's Work
    (graphql-core calls an object type's `is_type_of` once for each of its values)."""
    for name, named in schema.type_map.items():
        if is_object_type(named) and not name.startswith("__"):
            named.is_type_of = _counted(named.is_type_of)


async def within_budget(work: Work, execution: Awaitable[ExecutionResult]) -> ExecutionResult:
    """The execution's result, or the refusal alone when it went past a limit on work."""
    work.execution = task = asyncio.ensure_future(execution)
    try:
        # The wall clock ends a request that waits (on the database) rather than works.
        async with asyncio.timeout(WAIT_SECONDS):
            result = await task
    except TimeoutError:
        work.refusal = work.refusal or MandateError(QUERY_TOO_COMPLEX, TOO_LONG)
    except asyncio.CancelledError:
        if work.refusal is None or asyncio.current_task().cancelling():
            raise  # cancelled from outside (the client went away), not by a refusal
    if work.refusal is not None:
        return ExecutionResult(errors=[GraphQLError(work.refusal.message, extensions={"code": QUERY_TOO_COMPLEX})])
    return result
