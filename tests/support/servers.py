"""Real `mandate` processes: the command, run against a database of its own (`Mandate`) or the
suite's (`Cli`), and `mandate serve` started, waited for and stopped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SCRIPT = Path(sys.executable).with_name("mandate")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "mandate.cli"]


@dataclass
class Mandate:
    """Runs the `mandate` command against one database, from a folder of its own."""

    url: str
    folder: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ, "DATABASE_URL": self.url, "MANDATE_SECRET_KEY": "cli-test-key",
            "MANDATE_ARGON2_TIME_COST": "1", "MANDATE_ARGON2_MEMORY_KIB": "1024", "PYTHONUNBUFFERED": "1",
        }

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*COMMAND, *args], input=stdin, capture_output=True, text=True, env=self.env(),
            cwd=self.folder, timeout=60,
        )

    def import_file(self, data: object) -> subprocess.CompletedProcess:
        path = self.folder / "import.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return self.run("import", str(path))


@dataclass
class Cli:
    """`mandate` against the suite's database, with the suite's key."""

    url: str
    folder: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.url}

    def run(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*COMMAND, *args], input=stdin, capture_output=True, text=True, cwd=self.folder, timeout=60,
            env={**self.env(), **env},
        )

    def run_all(self, *runs: tuple[list[str], str | None]) -> list[subprocess.CompletedProcess]:
        """Several runs of (args, stdin) at once: for refusals, which write nothing."""
        started = [
            (args, stdin, subprocess.Popen([*COMMAND, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, cwd=self.folder,
                                           env=self.env()))
            for args, stdin in runs
        ]
        results = []
        for args, stdin, process in started:
            out, err = process.communicate(stdin or "", timeout=60)
            results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
        return results

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout


def assert_refused(result: subprocess.CompletedProcess, exit_code: int, *words: str) -> None:
    """A refusal is one line on stderr, with no traceback."""
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"mandate serve exited: {log.read_text()}"
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"mandate serve did not answer /healthz: {log.read_text()}")


def stop(*processes: subprocess.Popen) -> None:
    """Stop servers started by a test: all asked at once, each killed if it will not go."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
