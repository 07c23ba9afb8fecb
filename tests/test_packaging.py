"""What `pip install mandate` puts on a machine: one importable name, and no warnings on the way."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_one_top_level_name_and_builds_without_warnings(tmp_path):
    # A copy of the sources: a build leaves build/ behind, and an old one would leak into the next.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "build", "*.egg-info", "node_modules", ".git", "__pycache__", "bench", "tests", "mandate.sqlite3*",
    ))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--disable-pip-version-check", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, check=True,
    )
    # (pip shows the build's own warnings only with -v; an install prints them whole)
    build_output = built.stdout + built.stderr
    assert "_Warning" not in build_output and "Deprecat" not in build_output
    (wheel,) = tmp_path.glob("mandate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"mandate", wheel.name.split("-py")[0] + ".dist-info"}
    # The design card's folders arrive under the one name, the built playground with them.
    assert "mandate/gql/app.py" in names and "mandate/models/tables.py" in names
    assert "mandate/models/migrations/0001_initial.py" in names
    assert "mandate/cli/main.py" in names  # the console script, mandate.cli:main
    assert "mandate/gql/static/playground.js" in names
