"""Documents written from the schema by hypothesis-graphql, the same on every run: what the
fuzz test (tests/test_fuzz.py) and the differential test (tests/test_plan.py) send."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mandate.gql.ids import to_global_id

# Global ids of rows a test world has (tables start empty, so its primary keys are small
# numbers) and of rows it has not.
IDS = [to_global_id(kind, pk) for kind in ("Account", "Site", "User") for pk in (1, 2, 3, 4, 6, 10**12)]


def examples(strategy: st.SearchStrategy[str], count: int) -> list[str]:
    """`count` documents of the strategy, in the order drawn, the same on every run
    (derandomised, no example database)."""
    found: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(document: str) -> None:
        found.append(document)

    collect()
    return found
