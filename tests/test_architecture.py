"""The shape of the code: no import cycles, and each layer imports only those below it.

Settings, the database set-up and logs sit at the bottom; the domain (`mandate.models`) on them;
the GraphQL surface (`mandate.gql`) on the domain; the command line and the app on top. Read from
the sources with `ast`, imports inside functions included (a deferred import is how a cycle
hides), imports under `if TYPE_CHECKING:` left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"mandate": ROOT / "mandate", "mandate.gql": ROOT / "gql", "mandate.models": ROOT / "models"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _runtime_imports(tree: ast.AST):
    """Import nodes, skipping the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (imp for child in node.orelse for imp in _runtime_imports(child))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def _target(name: str) -> str | None:
    """The Mandate module an imported name lives in (itself, or the nearest enclosing one)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found = set()
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif node.module is None or node.level:
            continue  # (no relative imports in Mandate)
        else:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {target for name in names if (target := _target(name)) is not None and target != module}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_of(module: str) -> str:
    """A module's package, as far as its own package __init__ is not counted as an import."""
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


GRAPH = {module: {t for t in imports_of(module) if t != _package_of(module)} for module in MODULES}

LAYERS = [  # top to bottom: a module imports only from its own layer and those below
    {"mandate.cli", "mandate.demo", "mandate.gql.__main__"},
    {"mandate.gql"},
    {"mandate.models"},
    {"mandate.config", "mandate.db", "mandate.logs", "mandate"},
]


def layer_of(module: str) -> int:
    best = None
    for depth, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (depth, len(prefix))
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best[0]


def test_the_modules_are_found():
    assert {"mandate.models.callers", "mandate.gql.app", "mandate.config"} <= set(MODULES)
    assert "mandate.models.callers" in GRAPH["mandate.gql.context"]


# The object types of a graph schema refer to each other (an account's users, a user's accounts):
# their modules do so through strawberry.lazy and imports inside resolvers, as strawberry's own
# examples do. That is the one cycle allowed; anything else, in the domain or across layers, fails.
OBJECT_TYPES = ["mandate.gql.accounts", "mandate.gql.audit", "mandate.gql.enforcement", "mandate.gql.users"]


def test_no_module_imports_itself_back_through_others():
    assert [cycle for cycle in _cycles(GRAPH) if not set(cycle) <= set(OBJECT_TYPES)] == []


def test_each_layer_imports_only_the_layers_below():
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) < layer_of(module)
    )
    assert upward == []


def test_the_domain_imports_no_graphql_or_http_library():
    web = ("strawberry", "graphql", "starlette", "uvicorn", "httpx")
    offending = []
    for module, path in MODULES.items():
        if not module.startswith("mandate.models"):
            continue
        for node in _runtime_imports(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            offending += [f"{module} imports {n}" for n in names if n.split(".")[0] in web]
    assert offending == []


def test_sql_lives_in_the_domain_only():
    """The GraphQL surface asks the domain; only the app itself sets the database up."""
    offending = []
    for module, path in MODULES.items():
        if not module.startswith("mandate.gql") or module == "mandate.gql.app":
            continue
        for node in _runtime_imports(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            offending += [
                f"{module} imports {n}" for n in names if n.split(".")[0] == "tortoise" or n == "mandate.models.sql"
            ]
    assert offending == []
