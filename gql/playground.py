"""The playground: GraphiQL, built from its npm packages into gql/static/ (playground/build.mjs,
`make playground`) and served by Mandate itself, so it works where the internet is blocked.

The page at GET /graphql loads only /graphql/assets/playground.{js,css}; its Content-Security-Policy
lets it load and connect to nothing but this origin, run no inline script, and add no inline style
but the <style> elements GraphiQL's dialogs make, admitted by a nonce new on every page.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).with_name("static")
ASSETS_PATH = "/graphql/assets"
MEDIA_TYPES = {"playground.js": "text/javascript; charset=utf-8", "playground.css": "text/css; charset=utf-8"}

# Fonts are data: URLs inside GraphiQL's CSS; nothing else comes from anywhere but here.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'nonce-{nonce}'",
    "font-src 'self' data:",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str

    @cached_property
    def version(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:16]

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, mtime=0)


@cache
def assets() -> dict[str, Asset]:
    """The built files, read once per process."""
    missing = [name for name in MEDIA_TYPES if not (STATIC / name).is_file()]
    if missing:
        raise RuntimeError(
            f"The playground is not built ({', '.join(missing)} missing in {STATIC}): "
            "run `make playground`, or set MANDATE_PLAYGROUND=0."
        )
    return {name: Asset((STATIC / name).read_bytes(), media_type) for name, media_type in MEDIA_TYPES.items()}


def _url(name: str) -> str:
    return f"{ASSETS_PATH}/{name}?v={assets()[name].version}"


@cache
def _page_template() -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mandate playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{_url("playground.css")}">
<script defer nonce="{{nonce}}" src="{_url("playground.js")}"></script>
</head>
<body>
<div id="graphiql">Loading the playground…</div>
<noscript>The playground needs JavaScript. Programs send operations by POST to this address.</noscript>
</body>
</html>
"""


def page() -> Response:
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        _page_template().format(nonce=nonce),
        headers={**PAGE_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(nonce=nonce)},
    )


async def asset(request: Request) -> Response:
    """One built file. Asked for by the version the page names, it may be cached for good."""
    found = assets().get(request.path_params["name"])
    if found is None:
        return Response("Not found.", status_code=404, media_type="text/plain")
    current = request.query_params.get("v") == found.version
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "ETag": f'"{found.version}"',
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    body = found.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = found.gzipped, "gzip"
    return Response(body, media_type=found.media_type, headers=headers)


ASSET_ROUTE = Route(ASSETS_PATH + "/{name}", asset, methods=["GET", "HEAD"])
