"""The root types and the schema, with the limits every document is validated against."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, DisableIntrospection, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from mandate.gql.accounts import AccountNode, AccountQueries, SiteNode
from mandate.gql.api_tokens import ApiTokenMutations
from mandate.gql.auth import AuthMutations, AuthQueries
from mandate.gql.documents import ParsedOnce
from mandate.gql.enforcement import EnforcementMutations
from mandate.gql.errors import is_expected
from mandate.gql.execution import executor_class
from mandate.gql.limits import (
    AliasesWithinLimit,
    DepthWithinLimit,
    NoReturnIntoLists,
    bound_field_merging,
    count_objects,
)
from mandate.gql.storable_text import StorableText
from mandate.gql.sessions import SessionMutations
from mandate.gql.totp import TotpMutations
from mandate.gql.users import UserNode
from mandate.gql.validation import OneAttemptPerDocument
from mandate.models.availability import is_outage

log = logging.getLogger("mandate.graphql")

Query = merge_types("Query", (AuthQueries, AccountQueries))
Mutation = merge_types(
    "Mutation", (AuthMutations, TotpMutations, EnforcementMutations, ApiTokenMutations, SessionMutations)
)


class MandateSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors are answers, not incidents; only the unexpected are logged, with a trace.
        # (An outage is logged once, in a line, where it is answered: gql/failures.py.)
        for error in errors:
            if not is_expected(error) and not is_outage(error.original_error):
                log.error("unexpected error in %s", error.path, exc_info=error.original_error or error)


def build_schema(*, introspection: bool = True, compiled: bool = True) -> strawberry.Schema:
    # The same rule classes for every request: ValidationCache is keyed by them. Each works in
    # time linear in the document, whatever its fragments (gql/limits.py).
    rules = [DepthWithinLimit, AliasesWithinLimit, OneAttemptPerDocument, NoReturnIntoLists]
    bound_field_merging()
    extensions = [
        ParsedOnce,  # the document gql/documents.py parsed, within its token limit
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=256),
        StorableText,  # NUL and lone surrogates: BAD_USER_INPUT before any resolver runs
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    config = StrawberryConfig()
    schema = MandateSchema(
        query=Query,
        mutation=Mutation,
        types=[AccountNode, SiteNode, UserNode],
        extensions=extensions,
        config=config,
        execution_context_class=executor_class(config, compiled),  # gql/execution.py
    )
    count_objects(schema._schema)
    return schema
