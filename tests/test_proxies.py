"""The client address (API.md, "Limits on work"): the TCP peer's, X-Forwarded-For only from a peer
in MANDATE_TRUSTED_PROXIES, the rightmost address there that is not a trusted proxy, a header with
any element that is not an IP address ignored whole, `Forwarded` never read. And no header value
reaches the log of a real `mandate serve`."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import time
from contextlib import AsyncExitStack

import httpx
import pytest
from tortoise.exceptions import ValidationError

from mandate.gql.app import create_app
from mandate.config import reload_settings
from mandate.logs import JsonFormatter
from mandate.models import sessions
from mandate.models.tables import Session
from tests.support.api import Api
from tests.support.documents import AUDIT, CONFIRM, ENROL
from tests.support.servers import COMMAND, free_port, wait_until_healthy
from tests.support.worlds import CLINIC, MANAGER, seed_clinic

PEER = "198.51.100.10"          # the TCP peer of the clients made here
CLIENT = "203.0.113.50"         # the address a trusted proxy says it forwards for
OTHER_PROXY = "192.0.2.1"       # a second trusted hop
LONG = "1" * 100                # over the 64-character column
LOGIN = 'mutation { login(email: "manager@example.org", password: "password-123") { status } }'
SPOOFS = ["203.0.113.78", "not-an-ip", "<script>x</script>", LONG, f"{CLIENT}, {LONG}"]


@pytest.fixture
async def clients(database_url, monkeypatch):
    """clients(peer, trusted=None, **headers): an Api on an app built with MANDATE_TRUSTED_PROXIES
    set to `trusted`, whose every request comes from the TCP peer `peer` with these headers."""
    async with AsyncExitStack() as stack:
        async def make(peer: str = PEER, trusted: str | None = None, headers: dict | None = None) -> Api:
            if trusted is None:
                monkeypatch.delenv("MANDATE_TRUSTED_PROXIES", raising=False)
            else:
                monkeypatch.setenv("MANDATE_TRUSTED_PROXIES", trusted)
            reload_settings()
            transport = httpx.ASGITransport(app=create_app(manage_database=False), client=(peer, 40000))
            http = httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers or {})
            return Api(await stack.enter_async_context(http))

        yield make


async def recorded_addresses(api: Api) -> tuple[set[str | None], set[str | None]]:
    """Log the Clinic's manager in, start enrolment and fail its confirmation; the client
    addresses then in the sessions table and in the Clinic's audit log."""
    status, token = await api.login_token(MANAGER)
    assert status == "AUTHENTICATED"
    assert not (await api.gql(ENROL, token=token)).errors
    assert (await api.gql(CONFIRM, {"c": "000000"}, token=token)).code == "INVALID_CODE"
    clinic = await api.account_id(token, CLINIC)
    audit = await api.gql(AUDIT, {"id": clinic}, token=token)
    assert not audit.errors, audit.body
    events = [edge["node"] for edge in audit.data["account"]["auditEvents"]["edges"]]
    assert {e["action"] for e in events} >= {"TOTP_ENROLMENT_STARTED", "SECOND_FACTOR_FAILED"}
    return (set(await Session.all().values_list("client_address", flat=True)),
            {e["clientAddress"] for e in events})


async def address_seen(api: Api, **headers: str) -> str | None:
    """The client address one login with these headers records."""
    await Session.all().delete()
    response = await api.client.post("/graphql", json={"query": LOGIN}, headers=headers)
    assert response.json() == {"data": {"login": {"status": "AUTHENTICATED"}}}
    (address,) = await Session.all().values_list("client_address", flat=True)
    return address


# -- an untrusted peer: the header changes nothing -------------------------------------------------


@pytest.mark.parametrize("spoof", SPOOFS)
@pytest.mark.parametrize("trusted", [None, f"{OTHER_PROXY},10.0.0.0/8"], ids=["no-proxies", "others-trusted"])
async def test_an_untrusted_peers_forwarded_for_changes_nothing(clients, seed, spoof, trusted):
    seeding = await clients()
    await seed_clinic(seeding, seed)
    api = await clients(trusted=trusted, headers={"X-Forwarded-For": spoof})
    assert await recorded_addresses(api) == ({PEER}, {PEER})


async def test_a_header_naming_a_trusted_proxy_is_still_ignored_from_an_untrusted_peer(clients, seed):
    await seed_clinic(await clients(), seed)
    api = await clients(trusted=OTHER_PROXY)
    assert await address_seen(api, **{"X-Forwarded-For": f"{CLIENT}, {OTHER_PROXY}"}) == PEER


# -- a trusted peer --------------------------------------------------------------------------------


async def test_a_trusted_proxys_header_gives_the_rightmost_untrusted_address(clients, seed):
    await seed_clinic(await clients(), seed)
    api = await clients(trusted=f"{PEER},{OTHER_PROXY}")
    seen = [
        await address_seen(api, **{"X-Forwarded-For": CLIENT}),
        # The client may write anything leftmost: what the trusted proxy appended is what counts.
        await address_seen(api, **{"X-Forwarded-For": f"198.51.100.99, {CLIENT}"}),
        await address_seen(api, **{"X-Forwarded-For": f"{CLIENT}, {OTHER_PROXY}"}),   # trusted hop skipped
        await address_seen(api, **{"X-Forwarded-For": f"{OTHER_PROXY}, {PEER}"}),     # all trusted: leftmost
        await address_seen(api, **{"X-Forwarded-For": "::ffff:203.0.113.51"}),       # mapped: as IPv4
        await address_seen(api, **{"X-Forwarded-For": "2001:DB8:0:0::1"}),           # normal form
    ]
    assert seen == [CLIENT, CLIENT, CLIENT, OTHER_PROXY, "203.0.113.51", "2001:db8::1"]


@pytest.mark.parametrize("header", [
    f"{CLIENT}, not-an-ip", f"not-an-ip, {CLIENT}", f"{CLIENT},", f"{CLIENT}:4711", "fe80::1%eth0",
    f"{CLIENT}, <script>x</script>", f"{CLIENT}, {LONG}", "",
])
async def test_a_header_with_any_bad_element_is_ignored_whole(clients, seed, header):
    await seed_clinic(await clients(), seed)
    api = await clients(trusted=PEER, headers={"X-Forwarded-For": header})
    assert await recorded_addresses(api) == ({PEER}, {PEER})


async def test_several_forwarded_for_headers_are_joined(clients, seed):
    await seed_clinic(await clients(), seed)
    api = await clients(trusted=f"{PEER},{OTHER_PROXY}")
    await Session.all().delete()
    headers = [("X-Forwarded-For", CLIENT), ("X-Forwarded-For", OTHER_PROXY)]
    response = await api.client.post("/graphql", headers=headers, json={"query": LOGIN})
    assert response.json() == {"data": {"login": {"status": "AUTHENTICATED"}}}
    assert await Session.all().values_list("client_address", flat=True) == [CLIENT]
    # The bad element in one header spoils both.
    assert await address_seen(api, **{"X-Forwarded-For": f"{CLIENT}, x"}) == PEER


async def test_a_header_of_more_than_32_addresses_is_ignored_whole(clients, seed):
    await seed_clinic(await clients(), seed)
    api = await clients(trusted=PEER)
    hops = [f"192.0.2.{n}" for n in range(1, 34)]
    assert await address_seen(api, **{"X-Forwarded-For": ", ".join(hops[-32:])}) == hops[-1]
    assert await address_seen(api, **{"X-Forwarded-For": ", ".join(hops)}) == PEER


async def test_forwarded_is_never_read(clients, seed):
    await seed_clinic(await clients(), seed)
    api = await clients(trusted=PEER)
    assert await address_seen(api, Forwarded=f"for={CLIENT}") == PEER
    assert await address_seen(api, Forwarded=f"for={CLIENT}", **{"X-Forwarded-For": "192.0.2.77"}) == "192.0.2.77"


async def test_a_trusted_network_trusts_every_peer_in_it(clients, seed):
    await seed_clinic(await clients(), seed)
    inside = await clients(peer="10.1.2.3", trusted="10.0.0.0/8, 2001:db8:ffff::/48")
    assert await address_seen(inside, **{"X-Forwarded-For": CLIENT}) == CLIENT
    inside_v6 = await clients(peer="2001:db8:ffff::7", trusted="10.0.0.0/8, 2001:db8:ffff::/48")
    assert await address_seen(inside_v6, **{"X-Forwarded-For": CLIENT}) == CLIENT
    outside = await clients(peer="11.1.2.3", trusted="10.0.0.0/8, 2001:db8:ffff::/48")
    assert await address_seen(outside, **{"X-Forwarded-For": CLIENT}) == "11.1.2.3"


async def test_peers_are_taken_in_normal_form(clients, seed):
    await seed_clinic(await clients(), seed)
    linked = await clients(peer="fe80::1%eth0")
    assert await address_seen(linked, **{"X-Forwarded-For": CLIENT}) == "fe80::1"  # no scope id
    mapped = await clients(peer=f"::ffff:{PEER}", trusted=PEER)
    assert await address_seen(mapped, **{"X-Forwarded-For": CLIENT}) == CLIENT
    mapped_setting = await clients(peer=PEER, trusted=f"::ffff:{PEER}")
    assert await address_seen(mapped_setting, **{"X-Forwarded-For": CLIENT}) == CLIENT
    assert await address_seen(await clients(peer="unix-socket"), **{"X-Forwarded-For": CLIENT}) is None


async def test_the_request_log_names_the_resolved_address(clients, seed, caplog):
    await seed_clinic(await clients(), seed)
    api = await clients(trusted=PEER)
    with caplog.at_level(logging.INFO, logger="mandate.request"):
        await api.client.get("/healthz", headers={"X-Forwarded-For": CLIENT})
        await api.client.get("/healthz", headers={"X-Forwarded-For": "<script>x</script>"})
    assert [r.fields["client"] for r in caplog.records if r.name == "mandate.request"] == [CLIENT, PEER]


# -- traces ----------------------------------------------------------------------------------------


async def test_an_unexpected_errors_trace_never_quotes_what_the_client_sent(clients, seed, monkeypatch):
    """As tortoise did for a long spoofed address: its validator's message quotes the value."""
    await seed_clinic(await clients(), seed)
    hostile = "ua-<script>trace-marker</script>"

    async def failing_login(email: str, password: str, client_address: str | None, user_agent: str | None):
        raise ValidationError(f"client_address: Length of '{hostile}' {len(hostile)} > 64")

    monkeypatch.setattr(sessions, "login", failing_login)
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        api = await clients(headers={"User-Agent": hostile})
        assert (await api.login(MANAGER)).code == "INTERNAL_SERVER_ERROR"
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = [json.loads(text) for text in written.getvalue().splitlines() if '"mandate.graphql"' in text]
    assert "tortoise.exceptions.ValidationError" in line["exc"] and "failing_login" in line["exc"]
    assert "trace-marker" not in written.getvalue()


# -- a real `mandate serve` ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(database_url, tmp_path_factory):
    """`mandate serve` as production runs it (no MANDATE_TRUSTED_PROXIES), its stderr kept."""
    folder = tmp_path_factory.mktemp("mandate-proxies")
    port, stderr = free_port(), folder / "stderr.log"
    env = {**os.environ, "DATABASE_URL": database_url, "MANDATE_ENV": "production", "PYTHONUNBUFFERED": "1"}
    env.pop("MANDATE_TRUSTED_PROXIES", None)
    with stderr.open("w") as err:
        server = subprocess.Popen([*COMMAND, "serve", "--port", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=err, env=env, cwd=folder)
    try:
        wait_until_healthy(server, f"http://127.0.0.1:{port}", stderr)
        yield f"http://127.0.0.1:{port}", stderr
    finally:
        server.terminate()
        server.wait(timeout=20)


def request_line(stderr, request_id: str) -> dict:
    for _ in range(200):
        for text in stderr.read_text().splitlines():
            if '"mandate.request"' in text and json.loads(text)["request_id"] == request_id:
                return json.loads(text)
        time.sleep(0.05)  # the line is written once the answer has gone
    raise AssertionError(f"no request line for {request_id}")


async def test_serve_never_believes_forwarded_for_from_localhost(served, clients, seed):
    base, stderr = served
    await seed_clinic(await clients(), seed)
    await Session.all().delete()
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        api = Api(http)
        for spoof in ["203.0.113.78", LONG]:
            http.headers["X-Forwarded-For"] = spoof
            login = await api.login(MANAGER)
            assert login.data["login"]["status"] == "AUTHENTICATED", login.body
        response = await http.get("/healthz", headers={"X-Forwarded-For": "203.0.113.78"})
    assert await Session.all().values_list("client_address", flat=True) == ["127.0.0.1", "127.0.0.1"]
    assert request_line(stderr, response.headers["x-request-id"])["client"] == "127.0.0.1"


async def test_serve_throttles_the_peer_whatever_the_header_says(served):
    """100 failed logins an hour are free per address; changing the header every time does not
    make a new address (each email differs, so only the per-address limit can answer)."""
    base, _ = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        api = Api(http)
        codes = []
        for n in range(101):
            http.headers["X-Forwarded-For"] = f"203.0.113.{n % 250}"
            codes.append((await api.login(f"nobody-{n}@example.org", "wrong-password")).code)
    assert codes[:100] == ["INVALID_CREDENTIALS"] * 100
    assert codes[100] == "RATE_LIMITED"


async def test_serve_writes_no_header_value_to_its_log(served):
    base, stderr = served
    hostile = {
        "X-Forwarded-For": "<script>xff-marker</script>",
        "Forwarded": "for=forwarded-marker",
        "X-Request-Id": "request id marker <b>",
        "Authorization": "Bearer authorization-marker",
        "User-Agent": "agent-marker/1.0 <script>",
        "Host": "host-marker.example",
    }
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=hostile) as http:
        ids = [
            (await http.get("/healthz")).headers["x-request-id"],
            (await http.post("/graphql", content=b"{}", headers={"Content-Type": "text/content-type-marker"}))
            .headers["x-request-id"],
            (await http.post("/graphql", content=b'{"query": "{ me { id } }"}',
                             headers={"Content-Type": "application/json; charset=utf-8; marker=ct-marker"}))
            .headers["x-request-id"],
            (await http.post("/graphql", json={"query": "mutation { login(email: \"body-marker@example.org\", "
                                                         "password: \"password-marker\") { status } }"}))
            .headers["x-request-id"],
        ]
        http.headers["X-Forwarded-For"] = "1" * 100
        ids.append((await http.post("/graphql", json={"query": "{ me { id } }"})).headers["x-request-id"])
    lines = [request_line(stderr, i) for i in ids]
    assert {line["client"] for line in lines} == {"127.0.0.1"}
    log = stderr.read_text()
    for marker in ["xff-marker", "forwarded-marker", "request id marker", "authorization-marker", "agent-marker",
                   "host-marker", "content-type-marker", "ct-marker", "body-marker", "password-marker", "1" * 65]:
        assert marker not in log, f"{marker!r} is in the log"


@pytest.mark.parametrize("value", ["10.0.0.0/8,not-a-network", "10.0.0.1/8", "fe80::1%eth0", "127.0.0.1:8080"])
def test_serve_refuses_to_start_with_a_bad_trusted_proxies(database_url, tmp_path, value):
    env = {**os.environ, "DATABASE_URL": database_url, "MANDATE_TRUSTED_PROXIES": value}
    done = subprocess.run([*COMMAND, "serve", "--port", str(free_port())], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("mandate serve: MANDATE_TRUSTED_PROXIES must be")
