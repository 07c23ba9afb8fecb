"""graphql-core's executor with one shortcut, for the commonest field of all.

A tree of a thousand accounts asks for about ten thousand plain leaves (`id`, `name`,
`enforced`): fields with no resolver, no guard and no arguments, whose value is an attribute of
the object and whose type is a scalar or an enum. graphql-core would build a resolve info for
each, call strawberry's default resolver through its wrappers, then complete the value. Here
such a field is read and serialised directly: the same attribute, the same serialiser, the same
answer. Anything else, and any null (whose error or null the full path words), takes the full path.
"""

from __future__ import annotations

from typing import Any, Callable

from graphql import GraphQLNonNull, GraphQLSchema, is_leaf_type, is_object_type
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

PlainLeaf = tuple[str, Callable[[Any], Any]]  # (attribute, serialise)


def plain_leaves(schema: GraphQLSchema) -> dict[tuple[str, str], PlainLeaf]:
    """Every (type, field) that is a plain attribute of a scalar or enum type."""
    found: dict[tuple[str, str], PlainLeaf] = {}
    for type_name, graphql_type in schema.type_map.items():
        if not is_object_type(graphql_type) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            leaf_type = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if (
                definition is None
                or not getattr(field.resolve, "_is_default", False)  # strawberry's own marker
                or definition.base_resolver is not None
                or definition.extensions  # guards and other field extensions
                or field.args
                or not is_leaf_type(leaf_type)
            ):
                continue
            found[(type_name, field_name)] = (definition.python_name, leaf_type.serialize)
    return found


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    leaves: dict[tuple[str, str], PlainLeaf] = {}

    def execute_field(self, parent_type, source, field_details_list, path, position_context):  # type: ignore[override]
        leaf = self.leaves.get((parent_type.name, field_details_list[0].node.name.value))
        # (strawberry always passes a middleware manager; it wraps nothing unless a schema
        # extension resolves fields, and then every field takes the full path)
        if leaf is not None and not (self.middleware_manager and self.middleware_manager.middlewares):
            value = getattr(source, leaf[0], None)
            if value is not None:
                serialised = leaf[1](value)
                if serialised is not None and serialised is not Undefined:
                    return serialised
        return super().execute_field(parent_type, source, field_details_list, path, position_context)


def lean_execution_context(schema: GraphQLSchema) -> type[LeanExecutionContext]:
    return type("MandateExecutionContext", (LeanExecutionContext,), {"leaves": plain_leaves(schema)})
