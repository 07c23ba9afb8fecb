"""A query's execution plan: compiled once per validated document, then run for every request.

graphql-core executes a document generically: for each of the thousands of fields of a tree it
collects sub-selections, builds a resolve info, asks the type's kind at every level of
`complete_value`, and strawberry wraps every resolver call in argument conversion and extension
chains. A plan, in graphql-jit's manner, decides all of that once, when the document is first
run: each field becomes a closure that knows its key, its resolver, its guards and how its value
completes (non-null, list, leaf, object), so a request only reads values and builds the answer.

The semantics stay graphql-core's, step for step: fields run in document order; a resolver's
awaitable is awaited where graphql-core awaits it (siblings gathered together, so DataLoaders
batch alike); a field's error is located at its path and nulls the nearest nullable field;
errors are kept in the order graphql-core keeps them, not repeated under a nulled position.
`tests/test_plan.py` runs documents through both and requires byte-identical answers.

Three shortcuts, each exactly what the generic path would have done:
- a plain leaf (no resolver, no guard, no argument) is its attribute, serialised, with no
  resolve info built unless it fails;
- a resolver without arguments whose guards are Mandate's own (gql/permissions.Guard) is called
  directly after them, as strawberry's permission extension would, skipping only the argument
  conversion there is none of;
- `__typename` is the type's name.

What a plan does not cover (`NotCompiled`), graphql-core runs: mutations and subscriptions (few,
serial, bound by SQL and argon2), fields of abstract types (`node`), introspection, a document
that disables error propagation, and any schema extension that wraps resolvers (middleware).
"""

from __future__ import annotations

import inspect as python_inspect
import weakref
from asyncio import gather
from typing import Any, Callable

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    located_error,
)
from graphql.execution import ExecutionResult, get_argument_values
from graphql.pyutils import Path, Undefined, gather_with_cancel, inspect, is_iterable
from graphql.utilities import type_from_ast
from strawberry.permission import PermissionExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter

from mandate.gql.permissions import Guard


class NotCompiled(Exception):
    """The document has something a plan does not cover: graphql-core runs it."""


# A compiled field: (run, source, the parent's path) -> its value, an awaitable of it, or raises
# the located error of a non-null field (as graphql-core's execute_field does).
FieldRun = Callable[["Run", Any, "Path | None"], Any]
# An object's compiled fields in document order: (response key, attribute, serialiser, its run);
# attribute and serialiser are a plain leaf's (None for any other field).
Fields = list[tuple[str, "str | None", "Callable[[Any], Any] | None", FieldRun]]
# A completion: (run, info, path, resolved value) -> completed value or awaitable; raises on error.
Complete = Callable[["Run", GraphQLResolveInfo, Path, Any], Any]


class Run:
    """One request's run of a plan: the executor's request state, and the errors met so far."""

    __slots__ = ("executor", "is_awaitable", "errors", "error_positions", "background", "variables")

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.is_awaitable = _quick(executor.is_awaitable, plain_types(executor.schema))
        self.variables = executor.variable_values.coerced  # what resolvers get, as strawberry gives it
        self.errors: list[GraphQLError] = []
        self.error_positions: set[Path | None] = set()
        self.background: set = set()

    def info(self, field: GraphQLField, nodes: list[FieldNode], parent_type: GraphQLObjectType,
             path: Path) -> GraphQLResolveInfo:
        executor = self.executor
        return GraphQLResolveInfo(
            nodes[0].name.value, nodes, field.type, parent_type, path, executor.schema,
            executor.fragment_definitions, executor.root_value, executor.operation, self.variables,
            executor.context_value, self.is_awaitable, executor.abort_signal, executor.async_helpers,
        )

    def handle_field_error(self, raw_error: Exception, return_type: GraphQLOutputType,
                           nodes: list[FieldNode], path: Path) -> None:
        error = located_error(raw_error, nodes, path.as_list())
        if is_non_null_type(return_type):
            raise error
        self.add_error(error, path)

    def add_error(self, error: GraphQLError, path: Path | None) -> None:
        """As graphql-core keeps errors: none under a position already nulled."""
        positions = self.error_positions
        position = path
        while position is not None:
            if position in positions:
                return
            position = position.prev
        if None in positions:
            return
        positions.add(path)
        self.errors.append(error)

    def settle_in_background(self, completed: Any, keys: list) -> None:
        """A sibling's error is raised at once; the awaitables already made (`completed[key]` for
        each of `keys`: a list's indices, an object's response keys) still run to their end."""
        if not keys:
            return
        future = gather(*(completed[key] for key in keys), return_exceptions=True)
        self.background.add(future)
        future.add_done_callback(self.background.discard)


_NEVER_AWAITABLE = frozenset({dict, list, str, int, float, bool, type(None)})
_plain_types: weakref.WeakKeyDictionary[GraphQLSchema, frozenset[type]] = weakref.WeakKeyDictionary()


def plain_types(schema: GraphQLSchema) -> frozenset[type]:
    """The types no value of which is awaitable: the plain ones, and the schema's own object
    classes (strawberry types: no `__await__`, no coroutines), which most resolvers return."""
    found = _plain_types.get(schema)
    if found is None:
        origins = set()
        for named in schema.type_map.values():
            definition = (getattr(named, "extensions", None) or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            origin = getattr(definition, "origin", None)
            if is_object_type(named) and isinstance(origin, type) and not hasattr(origin, "__await__"):
                origins.add(origin)
        found = _plain_types[schema] = _NEVER_AWAITABLE | origins
    return found


def _quick(is_awaitable: Callable[[Any], bool], plain: frozenset[type]) -> Callable[[Any], bool]:
    """The executor's predicate, answered at once for the values most fields give."""
    def quick(value: Any) -> bool:
        return type(value) not in plain and is_awaitable(value)

    return quick


# -- completing values ----------------------------------------------------------------------------


def _non_null(inner: Complete) -> Complete:
    def complete(run: Run, info: GraphQLResolveInfo, path: Path, result: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        completed = None if result is None or result is Undefined else inner(run, info, path, result)
        if completed is None:
            raise TypeError(f"Cannot return null for non-nullable field {info.parent_type}.{info.field_name}.")
        return completed

    return complete


def _nullable(inner: Complete) -> Complete:
    def complete(run: Run, info: GraphQLResolveInfo, path: Path, result: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        if result is None or result is Undefined:
            return None
        return inner(run, info, path, result)

    return complete


def _leaf(leaf_type: Any) -> Complete:
    coerce = leaf_type.coerce_output_value

    def complete(run: Run, info: GraphQLResolveInfo, path: Path, result: Any) -> Any:
        coerced = coerce(result)
        if coerced is Undefined or coerced is None:
            raise TypeError(
                f"Expected `{inspect(leaf_type)}.coerce_output_value({inspect(result)})`"
                f" to return non-nullable value, returned: {inspect(coerced)}"
            )
        return coerced

    return complete


def _list(item_type: GraphQLOutputType, complete_item: Complete, nodes: list[FieldNode]) -> Complete:
    def complete(run: Run, info: GraphQLResolveInfo, path: Path, result: Any) -> Any:
        if not is_iterable(result):
            raise GraphQLError(
                f"Expected Iterable, but did not find one for field '{info.parent_type}.{info.field_name}'."
            )
        is_awaitable = run.is_awaitable
        completed: list[Any] = []
        append = completed.append
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(result):
                item_path = Path(path, index, None)
                if is_awaitable(item):
                    append(_awaited_field(run, info, item_path, item, item_type, complete_item, nodes))
                    awaitable_indices.append(index)
                    continue
                try:
                    value = complete_item(run, info, item_path, item)
                    if is_awaitable(value):
                        append(_completed_field(run, value, item_type, nodes, item_path))
                        awaitable_indices.append(index)
                    else:
                        append(value)
                except Exception as raw_error:
                    run.handle_field_error(raw_error, item_type, nodes, item_path)
                    append(None)
        except Exception:
            run.settle_in_background(completed, awaitable_indices)
            raise
        return _whole(completed, awaitable_indices)

    return complete


def _whole(completed: Any, keys: list) -> Any:
    """A completed list or object; an awaitable of it whole when the values at `keys` are awaitable."""
    return _gathered(completed, keys) if keys else completed


async def _gathered(completed: Any, keys: list) -> Any:
    """A list's or an object's awaitable values, awaited together, put back in their places."""
    if len(keys) == 1:
        completed[keys[0]] = await completed[keys[0]]
    else:
        for key, value in zip(keys, await gather_with_cancel(*(completed[key] for key in keys)), strict=True):
            completed[key] = value
    return completed


def _object(object_type: GraphQLObjectType, fields: Fields, nodes: list[FieldNode]) -> Complete:
    is_type_of = object_type.is_type_of

    def complete(run: Run, info: GraphQLResolveInfo, path: Path, result: Any) -> Any:
        if is_type_of is not None:
            belongs = is_type_of(result, info)
            if run.is_awaitable(belongs):
                return _object_after_check(run, belongs, object_type, fields, nodes, path, result)
            if not belongs:
                raise _invalid_return_type(object_type, result, nodes)
        return execute_fields(run, fields, result, path)

    return complete


async def _object_after_check(run, belongs, object_type, fields, nodes, path, result):
    if not await belongs:
        raise _invalid_return_type(object_type, result, nodes)
    value = execute_fields(run, fields, result, path)
    return await value if run.is_awaitable(value) else value


def _invalid_return_type(object_type: GraphQLObjectType, result: Any, nodes: list[FieldNode]) -> GraphQLError:
    return GraphQLError(f"Expected value of type '{object_type}' but got: {inspect(result)}.", nodes)


def execute_fields(run: Run, fields: Fields, source: Any, path: Path | None) -> Any:
    """An object's fields in document order; awaitables gathered together, as graphql-core does."""
    results: dict[str, Any] = {}
    is_awaitable = run.is_awaitable
    awaitable_keys: list[str] = []
    try:
        for key, attribute, coerce, run_field in fields:
            if attribute is not None:  # a plain leaf, read here; a null or a refusal takes its run
                value = getattr(source, attribute, None)
                if value is not None:
                    try:
                        value = coerce(value)
                    except Exception:  # noqa: BLE001 - its run words the error
                        value = None
                    if value is not None and value is not Undefined:
                        results[key] = value
                        continue
            value = run_field(run, source, path)
            results[key] = value
            if is_awaitable(value):
                awaitable_keys.append(key)
    except Exception:
        run.settle_in_background(results, awaitable_keys)
        raise
    return _whole(results, awaitable_keys)


# -- compiling ------------------------------------------------------------------------------------


class Compiler:
    """Turns one operation, under one set of @skip/@include conditions, into its plan."""

    def __init__(self, schema: GraphQLSchema, config: Any, fragments: dict[str, FragmentDefinitionNode],
                 variables: Any, hide_suggestions: bool) -> None:
        self.schema = schema
        self.info_class = config.info_class  # strawberry's Info, as strawberry builds it for a resolver
        self.default_is_getattr = config.default_resolver is getattr  # what a basic field's value is
        self.fragments = fragments
        self.variables = variables  # graphql-core's VariableValues, for the conditions only
        self.hide_suggestions = hide_suggestions
        self.conditions: set[str] = set()  # the variables the selection depended on

    # - which fields: graphql-core's CollectFields, for object types -

    def collect(self, runtime_type: GraphQLObjectType, selection_sets: list[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._collect(runtime_type, selection_set, grouped, visited)
        return grouped

    def _collect(self, runtime_type, selection_set, grouped, visited) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if self._included(selection):
                    key = (selection.alias or selection.name).value
                    grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._included(selection) and self._matches(selection, runtime_type):
                    self._collect(runtime_type, selection.selection_set, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited or not self._included(selection):
                    continue
                visited.add(name)
                fragment = self.fragments.get(name)
                if fragment is not None and self._matches(fragment, runtime_type):
                    self._collect(runtime_type, fragment.selection_set, grouped, visited)

    def _included(self, node) -> bool:
        if not node.directives:
            return True
        for directive_type, excludes_when in ((GraphQLSkipDirective, True), (GraphQLIncludeDirective, False)):
            directive = next((d for d in node.directives if d.name.value == directive_type.name), None)
            if directive is None:
                continue
            for argument in directive.arguments:
                if isinstance(argument.value, VariableNode):
                    self.conditions.add(argument.value.name.value)
            values = get_argument_values(directive_type, directive, self.variables, None, self.hide_suggestions)
            if bool(values["if"]) is excludes_when:
                return False
        return True

    def _matches(self, fragment, runtime_type: GraphQLObjectType) -> bool:
        if not fragment.type_condition:
            return True
        condition = type_from_ast(self.schema, fragment.type_condition)
        if condition is runtime_type:
            return True
        return is_abstract_type(condition) and self.schema.is_sub_type(condition, runtime_type)

    # - how each field runs -

    def object_fields(self, object_type: GraphQLObjectType, selection_sets: list[SelectionSetNode]) -> Fields:
        compiled = []
        for key, nodes in self.collect(object_type, selection_sets).items():
            field = self.schema.get_field(object_type, nodes[0].name.value)
            if field is None:
                continue  # graphql-core leaves an unknown field out (validation refuses it first)
            run_field = self.field(object_type, key, field, nodes)
            leaf = getattr(run_field, "plain_leaf", None)
            compiled.append((key, *(leaf or (None, None)), run_field))
        return compiled

    def field(self, parent_type: GraphQLObjectType, key: str, field: GraphQLField, nodes: list[FieldNode]) -> FieldRun:
        name = nodes[0].name.value
        if name.startswith("__"):
            if name != "__typename":
                raise NotCompiled("introspection")
            type_name = parent_type.name

            def typename(run: Run, source: Any, path: Path | None) -> str:
                return type_name

            return typename
        definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        leaf = self._plain_leaf(field, definition, nodes)
        if leaf is not None:
            return self._leaf_field(parent_type, key, field, nodes, *leaf)
        complete = self.completion(field.type, nodes)
        resolve = self._direct(definition, nodes) or field.resolve
        if resolve is None:
            raise NotCompiled("a field without a resolver")
        return self._resolved_field(parent_type, key, field, nodes, resolve, complete)

    def _plain_leaf(self, field: GraphQLField, definition: Any, nodes: list[FieldNode]) -> tuple[str, Any] | None:
        """(attribute, leaf type) of a field that is only its object's attribute, of a leaf type."""
        named = field.type.of_type if is_non_null_type(field.type) else field.type
        if (definition is None or not definition.is_basic_field or field.args or nodes[0].arguments
                or not is_leaf_type(named) or not self.default_is_getattr):
            return None
        return definition.python_name, named

    def _leaf_field(self, parent_type, key, field, nodes, attribute, leaf_type) -> FieldRun:
        coerce = leaf_type.coerce_output_value
        non_null = is_non_null_type(field.type)
        fallback = self._resolved_field(parent_type, key, field, nodes, field.resolve, self.completion(field.type, nodes))

        def run_field(run: Run, source: Any, path: Path | None) -> Any:
            # execute_fields has read the attribute and serialised it; this runs when that gave
            # no value: a null of a nullable leaf is null, anything else graphql-core's path words.
            if not non_null and getattr(source, attribute, Undefined) is None:
                return None
            return fallback(run, source, path)  # a missing attribute, a null or a refusal

        run_field.plain_leaf = (attribute, coerce)  # execute_fields reads such a leaf itself
        return run_field

    def _direct(self, definition: Any, nodes: list[FieldNode]) -> Callable | None:
        """The resolver, called after its guards as strawberry's permission extension calls it,
        for a field of Mandate's own guards and no arguments; None for any other field."""
        if definition is None or definition.base_resolver is None or definition.arguments or nodes[0].arguments:
            return None
        guards = []
        for extension in definition.extensions:
            if not isinstance(extension, PermissionExtension) or extension.fail_silently:
                return None
            if not all(isinstance(permission, Guard) for permission in extension.permissions):
                return None
            guards.extend(extension.permissions)
        function = definition.base_resolver.wrapped_func
        parameters = list(python_inspect.signature(function).parameters)
        if parameters not in (["self"], ["self", "info"]):
            return None
        wants_info = len(parameters) == 2
        info_class = self.info_class

        def guarded(source: Any, info: GraphQLResolveInfo) -> Any:
            """strawberry's Info for the resolver, once every guard has let the caller through."""
            strawberry_info = info_class(_raw_info=info, _field=definition)
            for guard in guards:
                guard.check(source, strawberry_info)
            return strawberry_info

        if definition.is_async:
            async def resolve_async(source: Any, info: GraphQLResolveInfo) -> Any:
                strawberry_info = guarded(source, info)  # (in the coroutine, as strawberry checks them)
                return await (function(source, strawberry_info) if wants_info else function(source))

            return resolve_async

        def resolve(source: Any, info: GraphQLResolveInfo) -> Any:
            strawberry_info = guarded(source, info)
            return function(source, strawberry_info) if wants_info else function(source)

        return resolve

    def _resolved_field(self, parent_type, key, field, nodes, resolve, complete) -> FieldRun:
        return_type = field.type
        parent_name = parent_type.name
        has_arguments = bool(field.args or nodes[0].arguments)
        hide_suggestions = self.hide_suggestions

        def run_field(run: Run, source: Any, parent_path: Path | None) -> Any:
            path = Path(parent_path, key, parent_name)
            info = run.info(field, nodes, parent_type, path)
            try:
                arguments = (get_argument_values(field, nodes[0], run.executor.variable_values, None, hide_suggestions)
                             if has_arguments else {})
                result = resolve(source, info, **arguments)
                if run.is_awaitable(result):
                    return _awaited_field(run, info, path, result, return_type, complete, nodes)
                completed = complete(run, info, path, result)
                if run.is_awaitable(completed):
                    return _completed_field(run, completed, return_type, nodes, path)
            except Exception as raw_error:
                run.handle_field_error(raw_error, return_type, nodes, path)
                return None
            return completed

        return run_field

    def completion(self, return_type: GraphQLOutputType, nodes: list[FieldNode]) -> Complete:
        if is_non_null_type(return_type):
            return _non_null(self._inner(return_type.of_type, nodes))
        return _nullable(self._inner(return_type, nodes))

    def _inner(self, return_type: GraphQLOutputType, nodes: list[FieldNode]) -> Complete:
        if is_list_type(return_type):
            item_type = return_type.of_type
            return _list(item_type, self.completion(item_type, nodes), nodes)
        if is_leaf_type(return_type):
            return _leaf(return_type)
        if is_object_type(return_type):
            # (compiled at once, not lazily: the validated document is finite, cycles are not)
            fields = self.object_fields(return_type, [node.selection_set for node in nodes if node.selection_set])
            return _object(return_type, fields, nodes)
        raise NotCompiled("a field of an abstract type")


async def _awaited_field(run, info, path, result, return_type, complete, nodes):
    # (a field's awaited value, or a list item's: the item's path and type)
    try:
        completed = complete(run, info, path, await result)
        if run.is_awaitable(completed):
            completed = await completed
    except Exception as raw_error:
        run.handle_field_error(raw_error, return_type, nodes, path)
        return None
    return completed


async def _completed_field(run, completed, return_type, nodes, path):
    try:
        return await completed
    except Exception as raw_error:
        run.handle_field_error(raw_error, return_type, nodes, path)
        return None


class Plan:
    """A compiled query: its root fields."""

    def __init__(self, root_fields: Fields) -> None:
        self.root_fields = root_fields

    def run(self, executor: Any) -> Any:
        """graphql-core's execute_operation for this plan: the result, or an awaitable of it."""
        run = Run(executor)
        try:
            data = execute_fields(run, self.root_fields, executor.root_value, None)
        except GraphQLError as error:
            run.add_error(error, None)
            return ExecutionResult(None, run.errors or None)
        if run.is_awaitable(data):
            return _awaited_result(run, data)
        return ExecutionResult(data, run.errors or None)


async def _awaited_result(run: Run, data: Any) -> ExecutionResult:
    try:
        return ExecutionResult(await data, run.errors or None)
    except GraphQLError as error:
        run.add_error(error, None)
        return ExecutionResult(None, run.errors or None)


# -- the plans of the documents seen --------------------------------------------------------------


class _Compiled:
    """The plans of one operation: one per set of values of the variables its @skip/@include read."""

    __slots__ = ("conditions", "plans", "__weakref__")
    MAX_PLANS = 16

    def __init__(self) -> None:
        self.conditions: tuple[str, ...] | None = None  # known after the first compilation
        self.plans: dict[tuple, Plan | None] = {}


_compiled: dict[int, tuple[weakref.ref, _Compiled]] = {}


def _of_operation(operation: OperationDefinitionNode) -> _Compiled:
    key = id(operation)
    entry = _compiled.get(key)
    if entry is not None and entry[0]() is operation:
        return entry[1]
    compiled = _Compiled()
    _compiled[key] = (weakref.ref(operation, lambda _ref, key=key: _compiled.pop(key, None)), compiled)
    return compiled


def _condition_values(coerced: dict[str, Any], names: tuple[str, ...]) -> tuple:
    return tuple((name in coerced, coerced.get(name)) for name in names)


def plan_for(executor: Any, config: Any) -> Plan | None:
    """The plan of the executor's operation, compiled on first sight; None when it has none."""
    operation = executor.operation
    if (operation.operation is not OperationType.QUERY or not executor.error_propagation
            or executor.abort_signal is not None
            or (executor.middleware_manager is not None and executor.middleware_manager.middlewares)):
        return None
    compiled = _of_operation(operation)
    coerced = executor.variable_values.coerced
    if compiled.conditions is not None:
        values = _condition_values(coerced, compiled.conditions)
        if values in compiled.plans:
            return compiled.plans[values]
    compiler = Compiler(executor.schema, config, executor.fragment_definitions, executor.variable_values,
                        executor.hide_suggestions)
    try:
        root_type = executor.schema.query_type
        plan: Plan | None = Plan(compiler.object_fields(root_type, [operation.selection_set]))
    except NotCompiled:
        plan = None
    # A plan depends on the conditions it met; the key reads every condition any plan met.
    names = tuple(sorted(set(compiled.conditions or ()) | compiler.conditions))
    if names != compiled.conditions:
        compiled.conditions = names
        compiled.plans.clear()
    values = _condition_values(coerced, names)
    if len(compiled.plans) < _Compiled.MAX_PLANS:
        compiled.plans[values] = plan
    return plan
