"""Dead sessions and stale throttle rows are deleted (issue 12): by `mandate cleanup`, and on a
schedule inside the served app; live sessions and failures that still count are kept."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta


from mandate.gql.app import create_app
from mandate.config import reload_settings
from mandate.models import cleanup, clock as domain_clock, throttle
from mandate.models.tables import Session, Throttle, User
from tests.support.api import CLIENT_ADDRESS

ANN, BOB, GHOST = "ann@example.org", "bob@example.org", "ghost@example.org"
WEEK = cleanup.DEAD_SESSION_RETENTION


async def live_tokens(api, tokens: dict[str, str]) -> set[str]:
    answers = {name: await api.gql("{ me { email } }", token=token) for name, token in tokens.items()}
    return {name for name, answer in answers.items() if not answer.errors}


async def test_sessions_dead_for_over_the_retention_are_deleted_live_and_recent_ones_kept(api, seed, clock):
    await seed({"users": [{"email": ANN}, {"email": BOB}]})
    _, expiring = await api.login_token(ANN)      # a full session: 12 hours
    _, revoked = await api.login_token(BOB)
    assert (await api.gql("mutation { logout }", token=revoked)).data == {"logout": True}
    clock.advance(WEEK.total_seconds() + 3600)
    _, live = await api.login_token(ANN)
    assert (await cleanup.clean_up()).sessions == 1           # revoked a week and an hour ago
    assert await Session.all().count() == 2
    clock.advance(12 * 3600 + 60)      # `expiring` expired over a week ago; `live` a minute ago
    _, fresh = await api.login_token(ANN)
    assert (await cleanup.clean_up()).sessions == 1
    assert await live_tokens(api, {"live": live, "fresh": fresh}) == {"fresh"}
    assert await Session.all().count() == 2    # `live`, dead for a minute, is kept for the week


async def test_stale_throttle_rows_are_deleted_and_counting_ones_kept(api, seed, clock):
    await seed({"users": [{"email": ANN}, {"email": BOB}]})
    assert (await api.login(GHOST, "wrong-password")).code == "INVALID_CREDENTIALS"
    assert (await api.login(BOB, "wrong-password")).code == "INVALID_CREDENTIALS"
    assert (await api.login(ANN, "wrong-password")).code == "INVALID_CREDENTIALS"
    await api.login_token(ANN)  # a success: Ann's failures reset to none

    named = {throttle.email_and_address_key(e, CLIENT_ADDRESS): f"{e} from here" for e in (ANN, BOB, GHOST)}

    async def rows() -> set[str]:
        return {named.get(key, key) for key in await Throttle.all().values_list("key", flat=True)}

    assert await rows() == {f"address:{CLIENT_ADDRESS}", f"email:{ANN}", f"{ANN} from here", f"email:{BOB}",
                            f"{BOB} from here", f"email:{GHOST}", f"{GHOST} from here"}
    assert (await cleanup.clean_up()).throttles == 2           # Ann's, reset by her success
    clock.advance(15 * 60 + 1)                                 # no delay of the ghost's can still run
    assert (await cleanup.clean_up()).throttles == 1           # an email no user has
    clock.advance(3600)                                        # an hour without a failure here
    assert (await cleanup.clean_up()).throttles == 1           # the address's count is forgotten
    assert await rows() == {f"email:{BOB}", f"{BOB} from here", f"{GHOST} from here"}
    clock.advance(24 * 3600)                                   # a day without one per email and address
    assert (await cleanup.clean_up()).throttles == 2
    # Bob's email counts his consecutive failures until a success (NIST), whenever that comes.
    assert await rows() == {f"email:{BOB}"}


async def test_cleanups_racing_delete_each_row_once(api, seed, clock):
    """Several processes may run it at once: idempotent deletes, no error, no row twice."""
    await seed({"users": [{"email": ANN}]})
    for _ in range(3):
        _, token = await api.login_token(ANN)
        await api.gql("mutation { logout }", token=token)
    clock.advance(WEEK.total_seconds() + 1)
    results = await asyncio.gather(*(cleanup.clean_up() for _ in range(4)))
    assert sum(r.sessions for r in results) == 3 and await Session.all().count() == 0


async def test_mandate_cleanup_deletes_and_says_what(cli, seed):
    await seed({"users": [{"email": ANN}]})
    ann = await User.get(email=ANN)
    now = domain_clock.now()
    for n, (created, revoked) in enumerate([(now - 2 * WEEK, now - WEEK - timedelta(hours=1)), (now, None)]):
        await Session.create(token_hash=f"{n:064d}", user_id=ann.id, kind="full", created_at=created,
                             expires_at=created + timedelta(hours=12), revoked_at=revoked)
    await Throttle.create(key=f"email:{ANN}", failures=0)
    await Throttle.create(key=f"email:{GHOST}", failures=3, last_failure_at=now)
    out = cli.ok("cleanup")
    assert out.strip() == ("Deleted 1 dead session(s) (expired or revoked over 7 days ago), "
                           "0 dead API token(s) (the same) and 1 stale throttle row(s).")
    assert await Session.all().values_list("token_hash", flat=True) == [f"{1:064d}"]
    assert await Throttle.all().values_list("key", flat=True) == [f"email:{GHOST}"]
    assert cli.ok("cleanup").startswith("Deleted 0 dead session(s)")


async def _until(condition, seconds: float = 20) -> None:
    """Waits for the schedule's outcome (not a race to win: the assertion is what happened)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "the scheduled clean-up never ran"
        await asyncio.sleep(0.02)


async def test_the_served_app_cleans_up_on_schedule_through_an_outage_and_stops_at_shutdown(
    api, seed, clock, monkeypatch, caplog
):
    await seed({"users": [{"email": ANN}]})
    _, token = await api.login_token(ANN)
    await api.gql("mutation { logout }", token=token)
    clock.advance(WEEK.total_seconds() + 1)
    monkeypatch.setenv("MANDATE_CLEANUP_MINUTES", "0.001")  # every 60 ms
    reload_settings()
    app = create_app(manage_database=False)
    real, calls = cleanup.clean_up, []

    async def first_fails():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionRefusedError("the database is down")
        return await real()

    monkeypatch.setattr(cleanup, "clean_up", first_fails)
    with caplog.at_level(logging.WARNING, logger="mandate.cleanup"):
        async with app.router.lifespan_context(app):
            task = app.state.cleanup
            await _until(_no_sessions)
            assert not task.done()
    assert task.cancelled()
    assert any("cleanup failed (ConnectionRefusedError" in r.getMessage() for r in caplog.records)
    assert len(calls) >= 2  # the failed run, then the one that deleted


async def _no_sessions() -> bool:
    return not await Session.all().exists()


async def test_a_cleanup_interval_of_0_schedules_nothing(monkeypatch):
    monkeypatch.setenv("MANDATE_CLEANUP_MINUTES", "0")
    reload_settings()
    app = create_app(manage_database=False)
    async with app.router.lifespan_context(app):
        assert app.state.cleanup is None
