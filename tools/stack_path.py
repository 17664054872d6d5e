"""Follow the validated stack mapping from `lifecycle.ensure_running` through the calls that pass it on,
and count what a reader has to follow (issue 32, item 3; the figures are in docs/dev/architecture.md).

    uv run python tools/stack_path.py            # the counts
    uv run python tools/stack_path.py --walk     # and the walk, one call a line

Static, from the source: in each function reached, the names bound to the mapping are the parameter it
came in by and plain aliases of it (`x = stack`); a call passing one of them (positionally or by
keyword) to a function of tasks/ is followed into that function's parameter, imports inside
functions included. Each function is entered once (depth first, in source order). Counted:
- modules: the distinct modules entered;
- climbs: calls from a module into a package above its own (a package is above another when it
  imports the other at load time and not the reverse: a climb is a call against that direction,
  made through an import inside a function);
- returns: entering a module the walk had already left (the reader goes back to a file it read);
- names: the distinct `module.function(parameter)` the mapping is known by, and the distinct
  parameter names among them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tasks"
START = ("stack.lifecycle", "ensure_running", "stack")


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _package(module: str, modules: dict) -> str:
    return module if module in modules and _is_package(module) else module.rpartition(".")[0] or module


def _is_package(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").exists()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module (below tasks/) an ImportFrom in `importer` names."""
    base = importer.split(".") if _is_package(importer) else importer.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    else:
        base = []
        if not (node.module or "").startswith("tasks"):
            return ""
    mod = (node.module or "").removeprefix("tasks").lstrip(".")
    return ".".join([*base, *([mod] if mod else [])])


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{node.name}.{item.name}"] = item
    return out


def _imports(module: str, nodes) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, attribute or None for a module)."""
    out: dict[str, tuple[str, str | None]] = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if node.module is None and not target:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if (ROOT / sub.replace(".", "/")).with_suffix(".py").exists() or _is_package(sub):
                    out[alias.asname or alias.name] = (sub, None)
                else:
                    out[alias.asname or alias.name] = (target, alias.name)
    return out


def _package_order(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Package -> the packages it imports at load time (a lazy import inside a function is how code
    reaches a package above its own: it does not order the packages)."""
    deps: dict[str, set[str]] = {}
    for name, tree in modules.items():
        own = _package(name, modules)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, node)
                if target:
                    other = _package(target, modules)
                    if other != own:
                        deps.setdefault(own, set()).add(other)
    return deps


def walk(modules: dict[str, ast.Module]):
    funcs = {m: _functions(t) for m, t in modules.items()}
    top_imports = {m: _imports(m, t.body) for m, t in modules.items()}
    seen: set[tuple[str, str]] = set()
    steps: list[tuple[str, str, str, str]] = []  # (caller module, module, function, parameter)

    def enter(caller: str, module: str, fn_name: str, param: str) -> None:
        if (module, fn_name) in seen or fn_name not in funcs.get(module, {}):
            return
        seen.add((module, fn_name))
        steps.append((caller, module, fn_name, param))
        fn = funcs[module][fn_name]
        names = {param}
        local = {**top_imports[module], **_imports(module, [n for n in ast.walk(fn) if isinstance(n, ast.ImportFrom)])}
        for node in _in_order(fn):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in names:
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            if not isinstance(node, ast.Call):
                continue
            target = _callee(node.func, module, local, funcs, fn_name)
            if target is None:
                continue
            callee_mod, callee_fn = target
            callee = funcs[callee_mod][callee_fn]
            params = [a.arg for a in callee.args.posonlyargs + callee.args.args]
            if "." in callee_fn and params and params[0] in ("self", "cls"):
                params = params[1:]
            for i, arg in enumerate(node.args):
                if isinstance(arg, ast.Name) and arg.id in names and i < len(params):
                    enter(module, callee_mod, callee_fn, params[i])
            for kw in node.keywords:
                if isinstance(kw.value, ast.Name) and kw.value.id in names and kw.arg:
                    enter(module, callee_mod, callee_fn, kw.arg)

    enter("", START[0], START[1], START[2])
    return steps


def _in_order(fn):
    """The nodes of a function body in source order (nested definitions' bodies included)."""
    return sorted((n for n in ast.walk(fn) if hasattr(n, "lineno") and n is not fn),
                  key=lambda n: (n.lineno, n.col_offset))


def _callee(func, module, local, funcs, current):
    if isinstance(func, ast.Name):
        if func.id in funcs[module]:
            return module, func.id
        if func.id in local and local[func.id][1] and func.id != current:
            mod, attr = local[func.id]
            return (mod, attr) if attr in funcs.get(mod, {}) else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = func.value.id
        if base in local and local[base][1] is None:
            mod = local[base][0]
            return (mod, func.attr) if func.attr in funcs.get(mod, {}) else None
        if base in local and local[base][1] and f"{local[base][1]}.{func.attr}" in funcs.get(local[base][0], {}):
            return local[base][0], f"{local[base][1]}.{func.attr}"  # Class.method
    return None


def measure() -> dict:
    modules = _modules()
    steps = walk(modules)
    deps = _package_order(modules)

    def above(a: str, b: str) -> bool:  # package a is above package b
        return b in deps.get(a, set()) and a not in deps.get(b, set())

    climbs = sum(1 for caller, mod, _, _ in steps
                 if caller and above(_package(mod, modules), _package(caller, modules)))
    order = [mod for _, mod, _, _ in steps]
    returns, left = 0, set()
    for prev, mod in zip(order, order[1:]):
        if mod != prev:
            left.add(prev)
            returns += mod in left
    return {"functions": len(steps), "modules": len(set(order)), "climbs": climbs, "returns": returns,
            "names": len({(m, f, p) for _, m, f, p in steps}), "parameter_names": len({p for *_, p in steps}),
            "steps": steps}


if __name__ == "__main__":
    result = measure()
    if "--walk" in sys.argv[1:]:
        for caller, mod, fn, param in result["steps"]:
            print(f"{caller or '-':24} -> {mod}.{fn}({param})")
    print(", ".join(f"{k}: {v}" for k, v in result.items() if k != "steps"))
