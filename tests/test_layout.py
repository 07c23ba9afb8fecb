"""The suite's own layout: test modules import what they share from tests/support, never from one
another, and conftest.py holds fixtures made from tests/support, so a test module can be moved,
renamed or deleted without breaking another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (imports inside functions count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):  # relative: `from . import test_x`, `from .conftest import y`
            found.update(f"tests.{node.module or alias.name}" for alias in node.names)
    return found


def forbidden(modules: set[str]) -> set[str]:
    """Those of `modules` that are test modules of this folder, or its conftest."""
    return {m for m in modules
            if m.startswith("tests.") and (m.split(".")[1].startswith("test_") or m.split(".")[1] == "conftest")}


def test_no_test_module_or_conftest_imports_a_test_module_or_conftest():
    offenders = {
        path.name: sorted(forbidden(imported_modules(path)))
        for path in sorted(TESTS.glob("*.py")) + sorted((TESTS / "support").glob("*.py"))
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_layout_check_sees_every_way_of_importing_a_test_module(tmp_path):
    """The check above must fail for each of these (a check that cannot fail checks nothing)."""
    for source in (
        "from tests.test_login import MEMBER",
        "import tests.test_cli",
        "from tests import test_totp",
        "from tests.conftest import Api",
        "from . import test_totp",
        "from .test_login import MEMBER",
        "async def f():\n    from tests.test_totp import enrolled",
    ):
        path = tmp_path / "test_example.py"
        path.write_text(source + "\n")
        assert forbidden(imported_modules(path)), source
    path = tmp_path / "test_example.py"
    path.write_text("from tests.support.api import Api\nfrom tests.support import worlds\nimport tests.support.people\n")
    assert forbidden(imported_modules(path)) == set()
