"""The layout tells the truth: rooms import downward only, and no module imports in a circle.

docs/architecture.md draws the rooms; this test reads every `import` of `inboxd/` with
`ast` and fails on an import from a lower room into a higher one, on `mail` importing
anything of inboxd but `errors` and `config`, on a cycle of module-level imports, and
on `inboxd` importing `cli`. The checker itself is tested on a small made-up tree, so a
checker that finds nothing cannot pass for a clean layout.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Rooms from the bottom up. A module may import its own room and any room below it.
LAYERS = [
    "base",
    "mail",
    "customers",
    "tickets",
    "queues",
    "agents",
    "workflow",
    "pipeline",
    "web",
    "daemon",
]
# Top-level modules: what every room uses. `pipeline` is the one ingest path and sits
# above the domain rooms it calls; `__main__` is the entry point into cli/.
# `config` is one idea in several files: config_base (what tables share), config_teams
# ([[teams]]), config_includes (files it names), config_ops ([metrics], [log]) and config_mail
# ([outbound]), so
# that none grows too long.
CONFIG = {"config", "config_base", "config_teams", "config_includes", "config_ops", "config_mail"}
BASE = {
    "__init__",
    *CONFIG,
    "errors",
    "models",
    "db",
    "runtime",
    "write_lock",
    "render",
    "metrics",
    "languages",
}
TOP_LEVEL = {*BASE, "pipeline", "__main__"}
# `mail` is pure: of inboxd it may know only these.
MAIL_MAY_IMPORT = {"inboxd", "inboxd.errors", "inboxd.config", "inboxd.languages"}
MAX_LINES = 520


def module_name(package_root: Path, path: Path) -> str:
    parts = path.relative_to(package_root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # the package itself (`from inboxd import __version__`)
    if parts[1] in ("migrations", *BASE) or parts[1] == "__main__":
        return "base"
    if parts[1] == "pipeline":
        return "pipeline"
    return parts[1]


def imports_of(tree: ast.Module, module: str, known: set[str]) -> Iterator[tuple[str, int, bool]]:
    """(imported inboxd module, line, at module level) for every import in a module."""
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level] if node.level else []
                base = ".".join([*package, *([base] if base else [])])
            # `from inboxd.tickets import store` imports inboxd.tickets.store.
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        for name in names:
            if name == "cli" or name.startswith("cli.") or name.split(".")[0] == "inboxd":
                yield name, node.lineno, id(node) in top


def violations(package_root: Path) -> list[str]:
    """Everything wrong with the layering of the package at `package_root`."""
    files = {module_name(package_root, p): p for p in sorted(package_root.rglob("*.py"))}
    known = set(files)
    found: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        if ".migrations." in f"{module}.":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        room = room_of(module)
        if room not in LAYERS:
            found.append(f"{module}: room {room!r} is not in docs/architecture.md's list")
            continue
        where = f"{path.relative_to(package_root.parent)}"
        for target, line, module_level in imports_of(tree, module, known):
            if target.split(".")[0] == "cli":
                if module != "inboxd.__main__":
                    found.append(f"{where}:{line}: imports {target}; inboxd never imports cli")
                continue
            target_room = room_of(target)
            if target_room not in LAYERS:
                continue
            if LAYERS.index(target_room) > LAYERS.index(room):
                found.append(
                    f"{where}:{line}: {room} imports {target} from the higher {target_room}"
                )
            if room == "mail" and target_room != "mail" and target not in MAIL_MAY_IMPORT:
                found.append(f"{where}:{line}: mail is pure but imports {target}")
            if module_level and target in graph and target != module:
                graph[module].add(target)
    found += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One example cycle per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            # A package importing its own submodule (`__init__` re-exports) is no cycle.
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                result.append([*sorted(group), sorted(group)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


# --- the real tree ---------------------------------------------------------------------


def test_rooms_import_downward_only_and_without_cycles() -> None:
    assert violations(ROOT / "inboxd") == []


def test_only_the_shared_modules_stay_at_the_top() -> None:
    top = {p.stem for p in (ROOT / "inboxd").glob("*.py")}
    assert top <= TOP_LEVEL, f"new top-level modules {top - TOP_LEVEL}: put them in a room"


def test_every_room_is_installed_and_explained() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    installed = set(config["tool"]["setuptools"]["packages"])
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for init in (ROOT / "inboxd").rglob("__init__.py"):
        package = module_name(ROOT / "inboxd", init)
        assert package in installed, f"{package} is missing from pyproject's packages"
        if package.count(".") == 1 and not package.endswith("migrations"):
            assert f"`{package.split('.')[1]}/`" in architecture, f"{package} not in the docs"
            assert (init.read_text(encoding="utf-8")).startswith('"""'), f"{package}: docstring"


def test_no_module_is_too_long_to_hold_in_one_head() -> None:
    for path in (ROOT / "inboxd").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


# --- the checker, on made-up trees -----------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "inboxd"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in {p.parent for p in root.rglob("*.py")}:
        (folder / "__init__.py").touch()
    return root


def test_checker_accepts_downward_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "errors.py": "",
            "mail/parse.py": "from inboxd.errors import X\n",
            "tickets/store.py": "from inboxd.mail import parse\n",
            "daemon/serve.py": "from inboxd.tickets.store import x\nfrom inboxd import pipeline\n",
            "pipeline.py": "from inboxd.tickets import store\n",
        },
    )
    assert violations(root) == []


def test_checker_finds_an_upward_import_even_inside_a_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "tickets/store.py": "def f():\n    from inboxd.agents import notify\n",
            "agents/notify.py": "",
        },
    )
    [problem] = violations(root)
    assert "tickets imports inboxd.agents.notify from the higher agents" in problem


def test_checker_finds_web_importing_the_daemon(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"web/app.py": "from inboxd.daemon import smtp\n", "daemon/smtp.py": ""})
    [problem] = violations(root)
    assert "web imports inboxd.daemon.smtp" in problem


def test_checker_keeps_mail_pure(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"mail/parse.py": "from inboxd.db import engine\n", "db.py": ""})
    [problem] = violations(root)
    assert "mail is pure but imports inboxd.db" in problem


def test_checker_finds_a_cycle_within_a_room(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "tickets/a.py": "from inboxd.tickets import b\n",
            "tickets/b.py": "from inboxd.tickets.a import x\n",
        },
    )
    assert violations(root) == [
        "import cycle: inboxd.tickets.a -> inboxd.tickets.b -> inboxd.tickets.a"
    ]


def test_checker_refuses_cli_imports_and_unknown_rooms(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"tickets/x.py": "import cli.main\n", "misc/y.py": ""})
    problems = violations(root)
    assert any("inboxd never imports cli" in p for p in problems)
    assert any("room 'misc'" in p for p in problems)
