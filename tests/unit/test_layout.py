"""The house's layout: packages by capability, no import circle between modules, doit only in the
doit layer, the gateway's process apart from the control plane, at most six modules loose in tasks/."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

TASKS = ROOT / "tasks"


def _modules() -> dict[str, Path]:
    out = {}
    for path in TASKS.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def _imports(name: str, path: Path, known: dict) -> set[str]:
    """Every FlowGate module `name` imports, at any depth (function-level imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def test_no_import_circle_between_modules():
    known = _modules()
    graph = {name: _imports(name, path, known) for name, path in known.items()}
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_the_gateway_imports_nothing_of_the_control_plane():
    """The data plane (tasks.gateway: what LiteLLM's process runs on a request) imports only itself
    and tasks.base, at any depth; the control plane may import it, never the reverse."""
    known = _modules()
    crossing = {name: sorted(t for t in _imports(name, path, known)
                             if not t.startswith(("tasks.gateway", "tasks.base")))
                for name, path in known.items() if name.startswith("tasks.gateway")}
    assert {name: found for name, found in crossing.items() if found} == {}
    assert len(crossing) >= 10  # the package is there and read


def test_only_the_doit_layer_imports_doit():
    for name, path in _modules().items():
        if name.startswith("tasks.graph"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(m == "doit" or m.startswith("doit.") for m in mods), name


def test_few_modules_lie_loose_in_tasks():
    loose = [p.name for p in TASKS.glob("*.py") if p.name != "__init__.py"]
    assert len(loose) <= 6, loose


def test_every_relative_import_names_a_module_that_exists():
    known = _modules()
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(parts + ([node.module] if node.module else []))
                assert target in known, f"{name}:{node.lineno}: no module {target}"


def test_unit_tests_mirror_the_packages():
    """tests/unit/<package>/test_<module>.py: each folder is a package of tasks/ (doubles: the
    test doubles' own checks), and no test module is loose beside this one."""
    unit = ROOT / "tests" / "unit"
    folders = [d.relative_to(unit) for d in unit.rglob("*")
               if d.is_dir() and (d / "__init__.py").exists() and d.name != "doubles"]
    assert folders and [f for f in folders if not (TASKS / f / "__init__.py").exists()] == []
    assert [p.name for p in unit.glob("test_*.py")] == ["test_layout.py"]
