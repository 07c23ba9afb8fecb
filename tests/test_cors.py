"""Browser frontends on other origins (API.md, release 2): MANDATE_CORS_ORIGINS lists the origins
whose pages may call POST /graphql with Authorization and Content-Type. A preflight from a listed
origin is answered 200 with that origin allowed; from any other origin it is refused, and no answer
carries Access-Control-Allow-Origin for it; no answer allows credentials. Through the HTTP app, then
in a real Chromium, whose fetch is what the headers are for.
"""

from __future__ import annotations

import json
import logging

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from mandate.config import InvalidSetting, reload_settings
from mandate.gql.app import create_app
from mandate.models import callers
from mandate.models.availability import DatabaseUnavailable
from tests.support.api import client_with_settings
from tests.support.browsers import chromium, loopback_socket, needs_chromium, origin_of, served
from tests.support.servers import assert_refused, free_port
from tests.support.worlds import CLINIC, GROUP_MANAGER, MANAGER, tree

FRONTEND = "https://app.example.org"
OTHER_FRONTEND = "http://127.0.0.1:5173"
LISTED = f"{FRONTEND}, {OTHER_FRONTEND}"
TREE = "{ accounts { id name viewerRole sites { name } descendants { id name parent { id } sites { name } } } }"


def preflight(origin: str, method: str = "POST", headers: str = "authorization,content-type") -> dict:
    """What a browser sends before a POST with a token and a JSON body (Chromium's spelling)."""
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


def cors_headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def allows(response, origin: str) -> bool:
    """The answer lets a page of `origin` read it, and never with credentials."""
    assert "access-control-allow-credentials" not in response.headers, response.headers
    return response.headers.get("access-control-allow-origin") == origin


@pytest.fixture
async def frontends(monkeypatch):
    """A client of the app with two frontends' origins listed."""
    async with client_with_settings(monkeypatch, MANDATE_CORS_ORIGINS=LISTED) as http:
        yield http


@pytest.fixture
async def manager_token(api, clinic) -> str:
    _, token = await api.login_token(MANAGER)
    return token


# -- preflights ------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [FRONTEND, OTHER_FRONTEND])
async def test_a_preflight_from_a_listed_origin_is_allowed(frontends, origin, statements):
    response = await frontends.options("/graphql", headers=preflight(origin))
    assert response.status_code == 200
    assert allows(response, origin)
    assert response.headers["access-control-allow-methods"] == "POST"
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert response.headers["access-control-max-age"] == "600"
    assert "Origin" in response.headers["vary"]  # a cache must not give one origin's answer to another
    assert statements == []  # a preflight reads no database


@pytest.mark.parametrize("origin", [
    "https://evil.example",
    "https://app.example.org.evil.example",  # the listed host as a prefix
    "http://app.example.org",                 # the listed host, another scheme
    "https://app.example.org:8443",           # the listed host, another port
    "https://sub.app.example.org",
    "null",                                   # sandboxed frames and file: pages
])
async def test_a_preflight_from_another_origin_is_refused(frontends, origin):
    response = await frontends.options("/graphql", headers=preflight(origin))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert not allows(response, origin)


@pytest.mark.parametrize("method, headers", [
    ("PUT", "authorization,content-type"),
    ("DELETE", ""),
    ("POST", "authorization,content-type,x-api-key"),
    ("POST", "cookie"),
])
async def test_a_preflight_for_another_method_or_header_is_refused(frontends, method, headers):
    response = await frontends.options("/graphql", headers=preflight(FRONTEND, method, headers))
    assert response.status_code == 400


async def test_preflights_are_in_the_request_log(frontends, caplog):
    caplog.set_level(logging.INFO, logger="mandate.request")
    await frontends.options("/graphql", headers=preflight(FRONTEND))
    await frontends.options("/graphql", headers=preflight("https://evil.example"))
    lines = [r.fields for r in caplog.records if r.name == "mandate.request"]
    assert [(line["method"], line["operation"], line["status"], line["outcome"]) for line in lines] == [
        ("OPTIONS", "graphql", 200, "ok"), ("OPTIONS", "graphql", 400, "http_400"),
    ]


# -- the requests themselves -----------------------------------------------------------------------


async def test_a_post_from_a_listed_origin_can_be_read(frontends, manager_token):
    response = await frontends.post(
        "/graphql", json={"query": TREE}, headers={"Origin": FRONTEND, "Authorization": f"Bearer {manager_token}"}
    )
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["data"]["accounts"]] == [CLINIC]
    assert allows(response, FRONTEND)
    assert "Origin" in response.headers["vary"]
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"retry-after", "x-request-id"}


async def test_a_post_from_another_origin_carries_no_allow_origin(frontends, manager_token):
    response = await frontends.post(
        "/graphql", json={"query": TREE},
        headers={"Origin": "https://evil.example", "Authorization": f"Bearer {manager_token}"},
    )
    assert "access-control-allow-origin" not in response.headers  # the browser keeps the answer from the page
    assert not allows(response, "https://evil.example")
    assert "Origin" in response.headers["vary"]


async def _refusal(http, kind: str, token: str):
    headers = {"Origin": FRONTEND, "Authorization": f"Bearer {token}"}
    if kind == "405":
        return await http.get("/graphql", headers=headers)
    if kind == "415":
        return await http.post("/graphql", content=b'{"query": "{ me { id } }"}',
                               headers={**headers, "Content-Type": "text/plain"})
    if kind == "413":
        return await http.post("/graphql", json={"query": "{ me { id } }", "padding": "x" * 300_000}, headers=headers)
    if kind == "400":
        return await http.post("/graphql", content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    return await http.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)


@pytest.mark.parametrize("kind, status, code", [
    ("400", 400, "BAD_REQUEST"),
    ("405", 405, "BAD_REQUEST"),
    ("413", 413, "BAD_REQUEST"),
    ("415", 415, "BAD_REQUEST"),
    ("503", 503, "SERVICE_UNAVAILABLE"),
    ("500", 500, "INTERNAL_SERVER_ERROR"),
])
async def test_error_answers_to_a_listed_origin_can_be_read(frontends, manager_token, monkeypatch, kind, status, code):
    """A frontend must be able to show why it was refused: the transport's refusals and the
    answers for failures (a database that does not answer, a bug) carry the header too."""
    if kind in ("503", "500"):
        failure = DatabaseUnavailable("gone") if kind == "503" else RuntimeError("a bug")

        async def failing(authorization):
            raise failure

        monkeypatch.setattr(callers, "resolve", failing)
    response = await _refusal(frontends, kind, manager_token)
    assert response.status_code == status
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]
    assert allows(response, FRONTEND)


async def test_origins_are_compared_in_the_form_browsers_send(monkeypatch):
    setting = "HTTPS://App.Example.org:443,http://[0:0::1]:03000,http://localhost:80"
    async with client_with_settings(monkeypatch, MANDATE_CORS_ORIGINS=setting) as http:
        for origin in ["https://app.example.org", "http://[::1]:3000", "http://localhost"]:
            response = await http.options("/graphql", headers=preflight(origin))
            assert response.status_code == 200 and allows(response, origin), origin


async def test_without_the_setting_no_answer_carries_cors_headers(client, manager_token):
    refused = await client.options("/graphql", headers=preflight(FRONTEND))
    assert refused.status_code == 405  # the route's own answer: no preflight is allowed
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    posted = await client.post(
        "/graphql", json={"query": TREE}, headers={"Origin": FRONTEND, "Authorization": f"Bearer {manager_token}"}
    )
    assert posted.status_code == 200
    assert cors_headers(refused) == cors_headers(posted) == {}


# -- the setting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, says", [
    ("*", "'*' is not accepted"),
    (f"{FRONTEND},*", "'*' is not accepted"),
    ("https://*.example.org", "'*' is not accepted"),
    ("https://app.example.org/", "has a path"),
    ("https://app.example.org/app", "has a path"),
    ("https://app.example.org?x=1", "has a path or query"),
    ("app.example.org", "is not an http:// or https:// origin"),
    ("null", "is not an http:// or https:// origin"),
    ("ftp://app.example.org", "is not an http:// or https:// origin"),
    ("https://user@app.example.org", "is not an http:// or https:// origin"),
    ("https://bücher.example", "ASCII host"),
    ("https://app.example.org:0", "port 0 is not 1 to 65535"),
    ("https://app.example.org:70000", "port 70000 is not 1 to 65535"),
    ("http://[::1::2]:3000", "is not an IPv6 address"),
])
async def test_a_bad_origin_stops_the_app_from_starting(monkeypatch, value, says):
    monkeypatch.setenv("MANDATE_CORS_ORIGINS", value)
    reload_settings()
    with pytest.raises(InvalidSetting, match="MANDATE_CORS_ORIGINS must be comma-separated origins") as refused:
        create_app(manage_database=False)
    assert says in str(refused.value)


def test_serve_refuses_to_start_with_a_bad_origin(cli):
    result = cli.run("serve", "--port", str(free_port()), MANDATE_CORS_ORIGINS=f"{FRONTEND},*")
    assert_refused(result, 2, "mandate serve: MANDATE_CORS_ORIGINS must be", "'*' is not accepted")


# -- in a browser ----------------------------------------------------------------------------------

# A page's fetch to the API, as a frontend writes it; a refusal by the browser is a TypeError.
FETCH = """async ({url, body, token, credentials}) => {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["Authorization"] = `Bearer ${token}`;
  try {
    const response = await fetch(url, {method: "POST", headers, body, credentials: credentials || "same-origin"});
    return {status: response.status, body: await response.json()};
  } catch (error) {
    return {error: error.name};
  }
}"""


async def _blank(request):
    return HTMLResponse("<!doctype html><title>A frontend</title>")


FRONTEND_APP = Starlette(routes=[Route("/", _blank)])


@pytest.fixture(scope="module")
async def browser():
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def pages(browser, monkeypatch):
    """The API served with one frontend's origin listed; a page open on that origin and one on
    another (a second port); and the (method, origin) of every request that reached the API."""
    listed, unlisted = loopback_socket(), loopback_socket()
    monkeypatch.setenv("MANDATE_CORS_ORIGINS", origin_of(listed))
    reload_settings()
    api_app, reached = create_app(manage_database=False), []

    async def recorded(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            reached.append((scope["method"], headers.get(b"origin", b"").decode()))
        await api_app(scope, receive, send)

    context = await browser.new_context()
    try:
        async with served(recorded) as (api_origin,), served(FRONTEND_APP, listed, unlisted) as origins:
            opened = []
            for origin in origins:
                page = await context.new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{origin}/")
                opened.append(page)

            async def call(page, body: str, token: str | None = None, credentials: str | None = None) -> dict:
                args = {"url": f"{api_origin}/graphql", "body": body, "token": token, "credentials": credentials}
                return await page.evaluate(FETCH, args)

            yield call, opened[0], opened[1], reached
    finally:
        await context.close()


def body(query: str, **variables) -> str:
    return json.dumps({"query": query, "variables": variables})


LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { status token } }"


@needs_chromium
async def test_a_page_of_a_listed_origin_logs_in_and_reads_the_tree(pages, api, seed):
    call, listed, _, _ = pages
    await seed(tree())
    login = await call(listed, body(LOGIN, e=GROUP_MANAGER, p="password-123"))
    assert login["status"] == 200 and login["body"]["data"]["login"]["status"] == "AUTHENTICATED", login
    token = login["body"]["data"]["login"]["token"]
    answer = await call(listed, body(TREE), token)
    assert answer["status"] == 200, answer
    assert answer["body"] == (await api.gql(TREE, token=token)).body  # the tree, as any client gets it
    assert len(answer["body"]["data"]["accounts"][0]["descendants"]) == 4


@needs_chromium
async def test_a_page_of_a_listed_origin_reads_an_error_answer(pages):
    call, listed, _, _ = pages
    answer = await call(listed, "{not json")
    assert answer["status"] == 400 and answer["body"]["errors"][0]["extensions"]["code"] == "BAD_REQUEST", answer


@needs_chromium
async def test_the_browser_blocks_a_page_of_another_origin(pages, api, seed):
    call, _, unlisted, reached = pages
    await seed(tree())
    _, token = await api.login_token(GROUP_MANAGER)
    assert await call(unlisted, body(TREE), token) == {"error": "TypeError"}
    assert await call(unlisted, body(LOGIN, e=GROUP_MANAGER, p="password-123")) == {"error": "TypeError"}
    origin = await unlisted.evaluate("location.origin")
    assert [method for method, sent_from in reached if sent_from == origin] == ["OPTIONS", "OPTIONS"]  # no POST


@needs_chromium
async def test_a_page_cannot_send_cookies_even_from_a_listed_origin(pages):
    call, listed, _, _ = pages
    assert await call(listed, body("{ __typename }"), credentials="include") == {"error": "TypeError"}
    assert await call(listed, body("{ __typename }")) == {"status": 200, "body": {"data": {"__typename": "Query"}}}
