"""bench/generate.py fills a fresh database that Mandate then serves as its own: the tree it was
asked for, secrets stored as Mandate stores them (the manager logs in with the saved TOTP secret),
and ids that Mandate's own inserts continue after. Run as a subprocess, checked through a live
`mandate serve` (the bench itself is not a test: it is run by hand, `bench/run`)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pyotp

from tests.support.api import Api
from tests.support.databases import backend_of, new_database
from tests.support.servers import COMMAND, Mandate, free_port, wait_until_healthy

GENERATE = Path(__file__).parents[1] / "bench" / "generate.py"
TREE = """query($id: ID!) { account(id: $id) { name twoFactorEnforcement { enforced }
  children { name sites { name } children { name twoFactorEnforcement { enforced } sites { name } } } } }"""
ENFORCE = """mutation($id: ID!) { setEnforcement(accountId: $id, enforced: true) {
  twoFactorEnforcement { enforced enforcedHere } } }"""
ROOT = "QWNjb3VudDox"  # Account:1


def generate(mandate: Mandate, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GENERATE), "--database-url", mandate.url, "--accounts", "21", "--fanout", "4",
         "--sites-per-account", "2", "--users", "30", "--readers", "2", "--login-users", "3", "--enforce-every", "5", "--out", str(out)],
        capture_output=True, text=True, env=mandate.env(), cwd=mandate.folder, timeout=120,
    )


async def table_counts(url: str) -> dict[str, int]:
    tables = ["accounts", "sites", "users", "memberships", "site_memberships"]
    sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in tables)
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            row = conn.execute(sql).fetchone()
    else:
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        try:
            row = await conn.fetchrow(sql)
        finally:
            await conn.close()
    return dict(zip(tables, row))


async def test_generated_organisation_is_served_and_its_manager_logs_in_with_the_saved_secret(
    database_url, tmp_path
):
    url, drop = await new_database(backend_of(database_url), tmp_path)
    mandate = Mandate(url, tmp_path)
    try:
        result = generate(mandate, tmp_path / "generated.json")
        assert result.returncode == 0, result.stderr
        # 1 + 4 + 16 accounts, 2 sites each; 30 members (every tenth a site member) and the manager,
        # 2 readers of the root and 3 login users, each with one role.
        assert await table_counts(url) == {
            "accounts": 21, "sites": 42, "users": 36, "memberships": 33, "site_memberships": 3,
        }
        saved = json.loads((tmp_path / "generated.json").read_text())
        assert saved["levels"] == [1, 4, 16] and saved["root_account_id"] == 1
        assert (tmp_path / "generated.json").stat().st_mode & 0o777 == 0o600

        again = generate(mandate, tmp_path / "again.json")
        assert again.returncode != 0 and "already holds" in again.stderr

        port, log = free_port(), tmp_path / "serve.log"
        with log.open("w") as out:
            server = subprocess.Popen([*COMMAND, "serve", "--port", str(port)], stdout=out,
                                      stderr=subprocess.STDOUT, env=mandate.env(), cwd=tmp_path)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_healthy(server, base_url, log)
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                api = Api(client)
                status, token = await api.login_token(saved["email"], saved["password"])
                assert status == "TWO_FACTOR_REQUIRED"
                verified = await api.verify(token, pyotp.TOTP(saved["totp_secret"]).now())
                assert not verified.errors, verified.body
                token = verified.data["verifyTwoFactor"]["token"]

                tree = await api.gql(TREE, {"id": ROOT}, token=token)
                assert not tree.errors, tree.body
                root = tree.data["account"]
                assert root["name"] == "Bench Group" and len(root["children"]) == 4
                clinics = [c for practice in root["children"] for c in practice["children"]]
                assert len(clinics) == 16 and all(len(c["sites"]) == 2 for c in clinics)
                # Ids 5, 10, 15 and 20 are switched on: the practice with id 5 covers its clinics
                # (ids 18-21, 20 among them), and clinics 10 and 15 their own.
                assert sum(c["twoFactorEnforcement"]["enforced"] for c in clinics) == 4 + 2

                # Mandate's own inserts (an audit event here) continue after the generated ids.
                enforced = await api.gql(ENFORCE, {"id": ROOT}, token=token)
                assert not enforced.errors, enforced.body
                assert enforced.data["setEnforcement"]["twoFactorEnforcement"] == {"enforced": True, "enforcedHere": True}
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        await drop()
