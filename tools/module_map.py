"""Print the table of every module under tasks/ with the first paragraph of its docstring, for
docs/dev/architecture.md (tests/test_docs.py checks that page names every module).

    uv run python tools/module_map.py            # print it
    uv run python tools/module_map.py --write    # replace the table in docs/dev/architecture.md
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tasks"


def summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    line = " ".join(doc.strip().split("\n\n")[0].split())
    return (line if len(line) <= 170 else line[:167].rsplit(" ", 1)[0] + " ...").replace("|", "\\|")


def packages() -> list[Path]:
    return sorted({p.parent for p in ROOT.rglob("__init__.py") if "__pycache__" not in p.parts and p.parent != ROOT})


def modules() -> list[str]:
    """Every module's dotted name below tasks/ (packages excluded), e.g. `stack.process.records`."""
    return [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in sorted(ROOT.rglob("*.py"))
            if p.name != "__init__.py" and "__pycache__" not in p.parts]


def table() -> str:
    rows = ["| package / module | what it is for |", "|---|---|"]
    for package in packages():
        rel = package.relative_to(ROOT)
        rows.append(f"| **`tasks/{rel.as_posix()}/`** | {summary(package / '__init__.py')} |")
        for path in sorted(package.glob("*.py")):
            if path.name != "__init__.py":
                rows.append(f"| `{'.'.join(rel.parts)}.{path.stem}` | {summary(path)} |")
    return "\n".join(rows)


def write(page: Path = ROOT.parent / "docs" / "dev" / "architecture.md") -> None:
    text = page.read_text(encoding="utf-8")
    start = text.index("| package / module | what it is for |")
    end = text.index("\n\n", start)
    page.write_text(text[:start] + table() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv[1:]:
        write()
    else:
        print(table())
