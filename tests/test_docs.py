"""The docs: the MkDocs site builds in strict mode (broken links and missing pages fail), the
architecture page names every module, and the README stays a quick start whose links resolve."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from module_map import modules  # noqa: E402


def test_the_site_builds_in_strict_mode(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "models" / "index.html").exists()


def test_the_architecture_page_names_every_module():
    page = (ROOT / "docs" / "dev" / "architecture.md").read_text(encoding="utf-8")
    missing = [m for m in modules() if f"`{m}`" not in page]
    assert not missing, f"not on docs/dev/architecture.md (run tools/module_map.py): {missing}"


def test_the_readme_is_a_quick_start_whose_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 300
    first_screen = "\n".join(text.splitlines()[:40])
    for step in ("uv run doit up", "uv run doit login:codex", "uv run doit integrate:codex --apply"):
        assert step in first_screen
    for target in re.findall(r"\]\(((?!https?://)[^)#]+)", text):
        assert (ROOT / target).exists(), target
    assert "uv run pytest" in text  # CI runs the README's test command


def test_pointers_from_the_code_to_a_docs_section_resolve():
    """Issue 31, item 25: `see docs/X.md, "Section"` (or `the README`) printed by a command names a
    file and a passage that exist (a moved section left `usage --by account` pointing nowhere)."""
    found = []
    for path in (ROOT / "tasks").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for where, section in re.findall(r'see (the README|docs/[\w/.-]+\.md), \\?"([^"\\]+)\\?"', text):
            page = ROOT / ("README.md" if where == "the README" else where)
            found.append((path.name, where, section))
            assert page.exists() and section in page.read_text(encoding="utf-8"), (path, where, section)
    assert found  # the pattern still matches the code's pointers


def test_the_models_example_is_what_doit_models_prints(tmp_path):
    """Issue 31, item 26: every line of docs/models.md's `doit models` example (rows left out as
    `...`) is a line the table prints for the double's catalog, one account per provider."""
    from tasks.base.paths import Paths
    from tasks.catalog import table
    from tasks.config.load import load_stack
    from tests.catalog_support import catalog
    from tests.conftest import make_home

    page = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    example = page.split("$ uv run doit models\n", 1)[1].split("```", 1)[0].splitlines()
    served = catalog("codex-plus", "claude")
    served = served._replace(models=[m._replace(accounts=[f"{m.providers[0]}-a.json"]) for m in served.models])
    printed = table.table(load_stack(Paths(root=ROOT, home=make_home(tmp_path / "home"))), served, "x").splitlines()
    for line in example:
        if line == "...":
            continue
        if line.startswith("catalog read: "):  # its time is the run's
            assert printed[-1].split("; ", 1)[1] == line.split("; ", 1)[1]
            continue
        assert line in printed, (line, printed)
