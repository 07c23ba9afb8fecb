"""/metrics in Prometheus' text format (MANDATE_METRICS=1): requests and latency by operation,
logins by outcome, second-factor failures, rate limits, accounts under enforcement."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mandate.gql.app import create_app
from mandate.config import reload_settings
from mandate.models.tables import Account
from tests.support.api import Api, app_client
from tests.support.databases import backend_of
from tests.support.servers import COMMAND, free_port, wait_until_healthy

MANAGER, MEMBER = "manager@example.org", "member@example.org"
WRONG_CODE = "000000"


@pytest.fixture
async def metered(database_url, monkeypatch):
    """The HTTP app with metrics on: (its client, its API)."""
    monkeypatch.setenv("MANDATE_METRICS", "1")
    reload_settings()
    async with app_client(create_app(manage_database=False)) as client:
        yield client, Api(client)


def scrape_text(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return scrape_text(response.text)


def moved(before: dict, after: dict) -> dict[tuple[str, tuple], float]:
    """The samples that changed, by how much (leaving out latency sums and buckets)."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if after[key] != before.get(key, 0.0) and not key[0].endswith(("_sum", "_bucket"))
    }


async def test_metrics_are_off_by_default(client):
    assert (await client.get("/metrics")).status_code == 404


async def test_a_failed_login_and_a_wrong_code_move_their_counters(metered, seed, clock):
    client, api = metered
    await seed({"users": [{"email": MEMBER}]})
    secret = (await api.enrol((await api.login_token(MEMBER))[1])).secret
    clock.advance(30)
    _, password_only = await api.login_token(MEMBER)
    before = await scrape(client)

    assert (await api.login(MEMBER, "wrong-password")).code == "INVALID_CREDENTIALS"
    assert (await api.verify(password_only, WRONG_CODE)).code == "INVALID_CODE"

    assert moved(before, await scrape(client)) == {
        ("mandate_requests_total", (("operation", "login"), ("outcome", "INVALID_CREDENTIALS"))): 1,
        ("mandate_requests_total", (("operation", "verifyTwoFactor"), ("outcome", "INVALID_CODE"))): 1,
        ("mandate_request_duration_seconds_count", (("operation", "login"),)): 1,
        ("mandate_request_duration_seconds_count", (("operation", "verifyTwoFactor"),)): 1,
        ("mandate_logins_total", (("outcome", "INVALID_CREDENTIALS"),)): 1,
        ("mandate_second_factor_failures_total", (("operation", "verifyTwoFactor"),)): 1,
    }
    assert secret  # (enrolled before the counting began)


async def test_logins_by_outcome_and_rate_limits_are_counted(metered, seed):
    client, api = metered
    await seed({"users": [{"email": MEMBER}]})
    before = await scrape(client)
    assert (await api.login(MEMBER)).data["login"]["status"] == "AUTHENTICATED"
    codes = [(await api.login(MEMBER, "wrong-password")).code for _ in range(5)]
    assert codes == ["INVALID_CREDENTIALS"] * 4 + ["RATE_LIMITED"]

    changed = moved(before, await scrape(client))
    assert changed[("mandate_logins_total", (("outcome", "ok"),))] == 1
    assert changed[("mandate_logins_total", (("outcome", "INVALID_CREDENTIALS"),))] == 4
    assert changed[("mandate_logins_total", (("outcome", "RATE_LIMITED"),))] == 1
    assert changed[("mandate_rate_limited_total", (("operation", "login"),))] == 1


async def test_accounts_under_enforcement_are_counted_at_scrape_time(metered, seed):
    client, _ = metered
    await seed({"accounts": [{"name": "Group", "children": [{"name": "A", "children": [{"name": "A1"}]},
                                                            {"name": "B"}]},
                             {"name": "Other"}]})
    await Account.filter(name="A").update(enforced=True)  # a change made anywhere: seen at the next scrape
    samples = await scrape(client)
    assert samples[("mandate_accounts", ())] == 5
    assert samples[("mandate_accounts_enforced", ())] == 2       # A, and A1 below it
    assert samples[("mandate_accounts_enforced_here", ())] == 1


async def test_a_scrape_counts_the_accounts_in_one_statement(metered, seed, statements):
    client, _ = metered
    await seed({"accounts": [{"name": "Group", "children": [{"name": "A"}, {"name": "B"}]}]})
    statements.clear()
    samples = await scrape(client)
    assert samples[("mandate_accounts", ())] == 3
    assert len(statements) == 1


async def test_with_several_workers_every_scrape_reports_the_totals_of_all(database_url, tmp_path):
    """`mandate serve --workers 2`: whichever process answers a scrape, it counts every process's
    requests (prometheus-client's multi-process mode)."""
    if backend_of(database_url) == "postgres":
        pytest.skip("the processes share their counts through files, whatever the database")
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "DATABASE_URL": database_url, "MANDATE_METRICS": "1", "MANDATE_LOG_LEVEL": "WARNING"}
    with log.open("w") as out:
        server = subprocess.Popen([*COMMAND, "serve", "--port", str(port), "--workers", "2"],
                                  stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base, log)
        login = 'mutation { login(email: "nobody%d@example.org", password: "wrong-password") { token } }'
        for i in range(12):  # a connection each, so that both workers answer some
            httpx.post(f"{base}/graphql", json={"query": login % i}, headers={"Connection": "close"}, timeout=10)
        counts = {
            scrape_text(httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10).text)
            .get(("mandate_logins_total", (("outcome", "INVALID_CREDENTIALS"),)))
            for _ in range(8)
        }
        assert counts == {12.0}
    finally:
        server.terminate()
        server.wait(timeout=20)


async def test_a_repeated_query_counts_each_time_under_its_operation(metered, seed):
    client, api = metered
    await seed({"users": [{"email": MEMBER}]})
    _, token = await api.login_token(MEMBER)
    before = await scrape(client)
    for _ in range(3):
        assert (await api.gql("{ me { email } }", token=token)).data == {"me": {"email": MEMBER}}
    assert moved(before, await scrape(client)) == {
        ("mandate_requests_total", (("operation", "me"), ("outcome", "ok"))): 3,
        ("mandate_request_duration_seconds_count", (("operation", "me"),)): 3,
    }
