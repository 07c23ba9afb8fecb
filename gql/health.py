"""/healthz (liveness: the database answers) and /readyz (readiness for load balancers: it
answers and accepts writes). Each answers within models.availability.CHECK_TIMEOUT_SECONDS, in
JSON: 200 `{"status": "ok"}`, or 503 with SERVICE_UNAVAILABLE and the check that failed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mandate.gql.failures import outage_answer
from mandate.gql.transport import json_answer, response_media_type
from mandate.models.availability import check_database_accepts_writes, check_database_answers, is_outage

LIVENESS = {"database": check_database_answers}
READINESS = {"database": check_database_answers, "writes": check_database_accepts_writes}


async def _answer(request: Request, checks: dict) -> Response:
    media_type = response_media_type(request.headers.get("accept"))
    for name, check in checks.items():
        try:
            await check()
        except Exception as error:  # noqa: BLE001 - an outage is an answer; anything else, a bug
            if not is_outage(error):
                raise
            return outage_answer(error, media_type, {"status": "unavailable", "failed": name})
    return json_answer({"status": "ok"}, media_type=media_type)


async def healthz(request: Request) -> Response:
    return await _answer(request, LIVENESS)


async def readyz(request: Request) -> Response:
    return await _answer(request, READINESS)
