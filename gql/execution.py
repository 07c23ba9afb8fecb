"""How a validated operation is executed: the one seam between graphql-core's executor and
Mandate's compiled plans (gql/plan.py).

graphql-core builds an executor of the class the schema names (strawberry's
`execution_context_class`, graphql-core's `executor_class`) and calls its public
`execute_operation`. Here a query with a plan runs its plan; anything else, and everything when
MANDATE_COMPILED_EXECUTION is off, runs as graphql-core runs it.
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from mandate.gql.plan import plan_for


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    config: StrawberryConfig

    def execute_operation(self, serially: bool | None = None) -> Any:
        plan = plan_for(self, self.config) if serially is None else None
        if plan is None:
            return super().execute_operation(serially)
        return plan.run(self)


def executor_class(config: StrawberryConfig, compiled: bool) -> type[StrawberryGraphQLCoreExecutionContext]:
    """The executor of a schema built with this config: planned when `compiled`, else graphql-core's own."""
    if not compiled:
        return StrawberryGraphQLCoreExecutionContext
    return type("MandateExecutor", (PlannedExecutor,), {"config": config})
