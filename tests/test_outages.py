"""A database that does not answer (issue 12, items 5 and 6): every request is answered in JSON,
HTTP 503, SERVICE_UNAVAILABLE with `retryAfter` and no partial data, wherever the failure is met
(the cache's lane, authentication, a resolver, a health check); anything else unexpected is a
masked JSON 500; /readyz tells a read-only database from one that takes writes; and a real
PostgreSQL restarted under load from two server processes loses no acknowledged write, answers
nothing but JSON, and fails no request that began after it was back.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aiosqlite
import httpx
import pytest
from tortoise import connections

from gql import observability, response_cache
from gql.app import create_app
from models.tables import Session
from tests.conftest import BACKENDS, CLIENT_ADDRESS, _on_server
from tests.test_login import CLINIC, MANAGER, MEMBER, SET_ENFORCEMENT
from tests.test_transport import client_with_settings

RETRY_AFTER = 2
GRAPHQL_RESPONSE_TYPE = "application/graphql-response+json; charset=utf-8"
READ = {"query": "{ accounts { id name } me { email } }"}
LOGIN = {"query": 'mutation { login(email: "member@example.org", password: "password-123") { token } }'}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


@asynccontextmanager
async def database_gone():
    """The suite's database stops answering. PostgreSQL: its connections are closed and new ones
    are refused (a port where nothing listens). SQLite, whose one connection stays open for the
    process's life: every statement fails as on a broken disk (tortoise's SQLite client never
    releases its lock when opening the file fails, so a failed reopening cannot be staged)."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        await client.close()
        client.port, kept = _closed_port(), client.port
        try:
            yield
        finally:
            await client.close()
            client.port = kept
        return

    async def broken_disk(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("execute", "execute_fetchall", "execute_insert", "executemany", "executescript"):
            patch.setattr(aiosqlite.Connection, name, broken_disk)
        yield


def assert_unavailable(response: httpx.Response, media_type: str = "application/json", **payload) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert response.json() == {**payload, "errors": [{
        "message": "The service cannot reach its database just now: try again shortly.",
        "extensions": {"code": "SERVICE_UNAVAILABLE", "retryAfter": RETRY_AFTER},
    }]}


@pytest.fixture
async def member_token(api, clinic) -> str:
    _, token = await api.login_token(MEMBER)
    return token


# --- every route answers 503 in JSON -----------------------------------------------------------


async def test_a_query_is_answered_503_when_the_database_is_gone(client, member_token):
    async with database_gone():
        response = await client.post("/graphql", json=READ, headers={"Authorization": f"Bearer {member_token}"})
    assert_unavailable(response)


async def test_without_the_cache_authentication_and_resolvers_answer_503(monkeypatch, member_token):
    async with client_with_settings(monkeypatch, MANDATE_RESPONSE_CACHE_MB="0") as http:
        async with database_gone():
            read = await http.post("/graphql", json=READ, headers={"Authorization": f"Bearer {member_token}"})
            login = await http.post("/graphql", json=LOGIN)
            nothing_to_read = await http.post("/graphql", json={"query": "{ __typename }"})
    assert_unavailable(read)  # authentication fails first
    assert_unavailable(login)  # the resolver fails
    assert nothing_to_read.json() == {"data": {"__typename": "Query"}}  # no database, no outage


async def test_a_mutation_that_fails_on_the_way_writes_nothing(monkeypatch, clinic):
    before = await Session.all().count()
    async with client_with_settings(monkeypatch, MANDATE_RESPONSE_CACHE_MB="0") as http:
        async with database_gone():
            assert_unavailable(await http.post("/graphql", json=LOGIN))
    assert await Session.all().count() == before


async def test_the_answer_takes_the_media_type_accept_asks_for(client, member_token):
    headers = {"Authorization": f"Bearer {member_token}", "Accept": "application/graphql-response+json"}
    async with database_gone():
        response = await client.post("/graphql", json=READ, headers=headers)
    assert_unavailable(response, GRAPHQL_RESPONSE_TYPE)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_checks_answer_503_in_json(client, path):
    async with database_gone():
        response = await client.get(path)
    assert_unavailable(response, status="unavailable", failed="database")


async def test_the_request_log_counts_the_503_it_sent(client, member_token, caplog):
    caplog.set_level(logging.INFO, logger="mandate.request")
    async with database_gone():
        await client.post("/graphql", json=READ, headers={"Authorization": f"Bearer {member_token}"})
    [line] = [r.fields for r in caplog.records if r.name == "mandate.request"]
    assert (line["status"], line["outcome"]) == (503, "SERVICE_UNAVAILABLE"), line


async def test_once_the_database_is_back_the_same_requests_succeed(client, member_token):
    headers = {"Authorization": f"Bearer {member_token}"}
    async with database_gone():
        assert_unavailable(await client.post("/graphql", json=READ, headers=headers))
    read = await client.post("/graphql", json=READ, headers=headers)
    assert read.status_code == 200 and read.json()["data"]["me"] == {"email": MEMBER}, read.text
    assert (await client.get("/healthz")).json() == {"status": "ok"}


# --- anything else unexpected: a masked JSON 500 -------------------------------------------------


def assert_masked(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"errors": [{"message": "Internal server error.",
                                           "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}


async def test_an_unexpected_error_before_the_handler_is_a_masked_json_500(client, monkeypatch, caplog):
    async def broken(token):
        raise RuntimeError("internal detail never shown")

    monkeypatch.setattr(response_cache, "glance", broken)
    caplog.set_level(logging.INFO, logger="mandate.request")
    response = await client.post("/graphql", json=READ)
    assert_masked(response)
    [line] = [r.fields for r in caplog.records if r.name == "mandate.request"]
    assert (line["status"], line["outcome"]) == (500, "INTERNAL_SERVER_ERROR"), line
    assert any(r.name == "mandate.http" and r.exc_info for r in caplog.records)  # the trace is the log's


async def test_an_error_outside_every_handler_is_still_a_masked_json_500(app, monkeypatch):
    def broken(headers):
        raise RuntimeError("internal detail never shown")

    monkeypatch.setattr(observability, "_request_id", broken)  # the outermost middleware fails
    transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 40000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert_masked(await http.post("/graphql", json=READ))


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/healthz", 405)])
async def test_the_routers_refusals_are_json(client, method, path, status):
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]


# --- /readyz: answers and takes writes ---------------------------------------------------------


async def test_readyz_and_healthz_answer_ok(client):
    for path in ("/healthz", "/readyz"):
        response = await client.get(path)
        assert (response.status_code, response.json()) == (200, {"status": "ok"}), path


@asynccontextmanager
async def database_read_only(database_url: str):
    """The suite's database refuses writes on connections opened from now on (PostgreSQL:
    default_transaction_read_only on the database, as on a standby; SQLite: query_only)."""
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    name = urlsplit(database_url).path.lstrip("/")
    server = os.environ.get("MANDATE_TEST_POSTGRES_URL", "")
    if postgres:
        await _on_server(server, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    else:
        client.pragmas["query_only"] = "ON"
    await client.close()
    try:
        yield
    finally:
        if postgres:
            await _on_server(server, f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        else:
            del client.pragmas["query_only"]
        await client.close()


async def test_readyz_is_503_on_a_read_only_database_while_healthz_stays_200(client, database_url):
    async with database_read_only(database_url):
        healthz, readyz = await client.get("/healthz"), await client.get("/readyz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
    assert_unavailable(readyz, status="unavailable", failed="writes")


async def test_a_write_on_a_read_only_database_is_503_and_writes_nothing(monkeypatch, clinic, database_url):
    before = await Session.all().count()
    async with client_with_settings(monkeypatch, MANDATE_RESPONSE_CACHE_MB="0") as http:
        async with database_read_only(database_url):
            login = await http.post("/graphql", json=LOGIN)
            read = await http.post("/graphql", json={"query": "{ __typename }"})
    assert_unavailable(login)
    assert read.status_code == 200
    assert await Session.all().count() == before
