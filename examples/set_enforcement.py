"""Switch two-factor enforcement on or off for one account, as an automation script would.

    MANDATE_URL=http://127.0.0.1:8000/graphql MANDATE_TOKEN=mandate_pat_... \
        python examples/set_enforcement.py "Account name" on|off

MANDATE_TOKEN is an API token of scope MANAGE (createApiToken, from a session of the manager's that
passed the second factor): the script holds no password and no TOTP secret, and may run as often
as it likes. The token's owner must manage the account.
"""

from __future__ import annotations

import os
import sys

import httpx

TREE = "{ accounts { id name descendants { id name } } }"
SET_ENFORCEMENT = """
mutation($accountId: ID!, $enforced: Boolean!) {
  setEnforcement(accountId: $accountId, enforced: $enforced) {
    name twoFactorEnforcement { enforced enforcedHere changedAt }
  }
}"""


class MandateError(RuntimeError):
    pass


class Client(httpx.Client):
    """An httpx client that knows the GraphQL endpoint's URL."""

    def __init__(self, url: str, **kwargs) -> None:
        super().__init__(timeout=10, **kwargs)
        self.url = url


def call(http: Client, query: str, variables: dict | None = None, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = http.post(http.url, json={"query": query, "variables": variables or {}}, headers=headers)
    if not response.headers.get("content-type", "").startswith("application/json"):
        raise MandateError(f"HTTP {response.status_code} from {http.url}: not a GraphQL answer")
    body = response.json()
    if body.get("errors"):
        error = body["errors"][0]
        raise MandateError(f"{error.get('extensions', {}).get('code')}: {error['message']}")
    return body["data"]


def find_account(http: Client, token: str, name: str) -> dict:
    for top in call(http, TREE, token=token)["accounts"]:
        for account in [top, *top["descendants"]]:
            if account["name"] == name:
                return account
    raise MandateError(f"no account named {name!r} is reachable")


def set_enforcement(url: str, token: str, name: str, enforced: bool) -> dict:
    with Client(url) as http:
        account = find_account(http, token, name)
        return call(http, SET_ENFORCEMENT, {"accountId": account["id"], "enforced": enforced}, token)[
            "setEnforcement"
        ]


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[2] not in {"on", "off"}:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = set_enforcement(
            os.environ.get("MANDATE_URL", "http://127.0.0.1:8000/graphql"),
            os.environ["MANDATE_TOKEN"],
            sys.argv[1],
            sys.argv[2] == "on",
        )
    except (MandateError, httpx.HTTPError, KeyError) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(f"{result['name']}: enforced={result['twoFactorEnforcement']['enforced']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
