"""The root types and the schema, with the limits every document is validated against."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from mandate.gql.accounts import AccountNode, AccountQueries, SiteNode
from mandate.gql.auth import AuthMutations, AuthQueries
from mandate.gql.documents import ParsedOnce
from mandate.gql.enforcement import EnforcementMutations
from mandate.gql.errors import is_expected
from mandate.gql.execution import lean_execution_context
from mandate.gql.limits import NoReturnIntoLists, count_objects
from mandate.gql.storable_text import StorableText
from mandate.gql.totp import TotpMutations
from mandate.gql.users import UserNode
from mandate.gql.validation import OneAttemptPerDocument
from mandate.models.availability import is_outage

log = logging.getLogger("mandate.graphql")

# The frontend's three-level tree with sites and enforcement sources counts 5 here; room to
# spare for nesting more levels. (Introspection fields are not counted: graphql-core's own
# introspection-depth rule bounds those.)
MAX_DEPTH = 15
MAX_ALIASES = 30

Query = merge_types("Query", (AuthQueries, AccountQueries))
Mutation = merge_types("Mutation", (AuthMutations, TotpMutations, EnforcementMutations))


class MandateSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors are answers, not incidents; only the unexpected are logged, with a trace.
        # (An outage is logged once, in a line, where it is answered: gql/failures.py.)
        for error in errors:
            if not is_expected(error) and not is_outage(error.original_error):
                log.error("unexpected error in %s", error.path, exc_info=error.original_error or error)


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    # The limits' rule classes are made once, here: made afresh per request (as the limiters do
    # in their constructors), every request's rules would differ and ValidationCache, keyed by
    # them, would validate every document again. The classes hold only their limit.
    rules = [
        *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
        OneAttemptPerDocument,
        NoReturnIntoLists,
    ]
    extensions = [
        ParsedOnce,  # the document gql/documents.py parsed, within its token limit
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=256),
        StorableText,  # NUL and lone surrogates: BAD_USER_INPUT before any resolver runs
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    schema = MandateSchema(
        query=Query,
        mutation=Mutation,
        types=[AccountNode, SiteNode, UserNode],
        extensions=extensions,
    )
    schema.execution_context_class = lean_execution_context(schema._schema)
    count_objects(schema._schema)
    return schema
