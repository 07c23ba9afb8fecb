"""What a request loaded goes with its answer, not at some later garbage collection; and the
server keeps what start-up built out of the collector's way.

graphql-core's executor is in a reference cycle of its own and holds the request's context, so
whatever the context kept (its DataLoaders' rows, the caller's reach) waited for the cycle
collector: thousands of objects a tree, walked again by every collection until then. Counted
here with the collector off, so that what is still alive after a request is what only a
collection would have freed.
"""

from __future__ import annotations

import gc

import pytest

from mandate.gql.app import create_app
from mandate.models.reach import AccountRow
from tests.support.documents import TREE
from tests.support.worlds import organisation


def alive(kind: type) -> int:
    return sum(1 for thing in gc.get_objects() if type(thing) is kind)


@pytest.fixture
def no_collector():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


async def test_a_trees_rows_go_with_its_answer(api, seed, no_collector):
    await seed(organisation(3, 2))
    _, token = await api.login_token("grace@example.org")
    before = alive(AccountRow)
    for _ in range(3):
        result = await api.gql(TREE, token=token)
        assert not result.errors, result.body
    # The three answers each drew the whole tree from rows the loaders brought...
    tops = result.data["accounts"]
    assert len(tops) == 1 and len(tops[0]["children"]) == 3 and len(tops[0]["children"][0]["children"]) == 2
    # ... and none of those rows outlived its request.
    assert alive(AccountRow) == before


async def test_the_served_app_freezes_what_start_up_built():
    assert gc.get_freeze_count() == 0
    app = create_app(manage_database=False, served=True)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000  # the schema, the modules, their word lists
    finally:
        gc.unfreeze()
    plain = create_app(manage_database=False)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0  # an app of the tests' own, built again and again, is not
