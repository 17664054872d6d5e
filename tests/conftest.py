"""Shared fixtures: a FlowGate home in a temp dir, and the real `doit` command line against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.base.paths import Paths  # noqa: E402


@dataclass
class DoitResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def base_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWGATE_", "DOIT_"))}
    env["FLOWGATE_HOME"] = str(home)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # The CLIProxyAPI double installed from a release archive serves the real registry's catalog.
    env.setdefault("CLIPROXY_DOUBLE_CATALOG", str(ROOT / "tests" / "fakes" / "models.json"))
    env.setdefault("CLIPROXY_DOUBLE_CODEX_CATALOG", str(ROOT / "tests" / "fakes" / "codex_client_models.json"))
    return env


def run_doit(home: Path, *args: str, env: dict | None = None, timeout: float = 120) -> DoitResult:
    """Run the real doit command line (same interpreter, this checkout's dodo.py) against `home`."""
    full_env = base_env(home)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args],
        cwd=str(home), env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    return DoitResult(proc.returncode, proc.stdout, proc.stderr)


def make_home(path: Path) -> Path:
    (path / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config" / "flowgate.yaml", path / "config" / "flowgate.yaml")
    return path


@pytest.fixture
def home(tmp_path) -> Path:
    return make_home(tmp_path / "home")


@pytest.fixture
def paths(home) -> Paths:
    return Paths(root=ROOT, home=home)


@pytest.fixture
def doit(home):
    def _run(*args, **kwargs):
        return run_doit(home, *args, **kwargs)
    return _run
