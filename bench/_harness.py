"""Small timing harness for bench/ scripts: run commands repeatedly, report median (min-max).

Run by hand (`uv run python bench/<script>.py`); results are quoted in the README, never asserted.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR_DODO = '''
DOIT_CONFIG = {"backend": "sqlite3", "dep_file": ".floor.sqlite3", "verbosity": 2}

def task_floor():
    """One up-to-date task: doit's own floor."""
    return {"actions": ["touch out.txt"], "file_dep": ["in.txt"], "targets": ["out.txt"]}
'''


def _bytecode_env(env):
    # This sandbox sets PYTHONDONTWRITEBYTECODE=1, so every run would recompile every module from
    # source. Users' Pythons cache bytecode: measure that, for the floor and FlowGate alike.
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(argv, *, cwd, env=None, runs=15, warmup=2) -> list[float]:
    env = _bytecode_env(env)
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        if i >= warmup:
            samples.append(elapsed)
    return samples


def summary(samples) -> str:
    return f"{statistics.median(samples):.3f} s ({min(samples):.3f}-{max(samples):.3f})"


def doit_floor_dir() -> Path:
    """A dir with a dodo.py holding one up-to-date task (doit's floor on this machine)."""
    d = Path(tempfile.mkdtemp(prefix="floor-"))
    (d / "dodo.py").write_text(FLOOR_DODO)
    (d / "in.txt").write_text("x")
    subprocess.run([sys.executable, "-m", "doit"], cwd=d, check=True, capture_output=True)
    return d


def flowgate_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="fg-home-"))
    (home / "config").mkdir()
    shutil.copy(ROOT / "config" / "flowgate.yaml", home / "config" / "flowgate.yaml")
    return home


def flowgate_env(home: Path) -> dict:
    env = dict(os.environ)
    env["FLOWGATE_HOME"] = str(home)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def doit_argv(*args) -> list[str]:
    return [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args]


def floor_argv() -> list[str]:
    return [sys.executable, "-m", "doit"]
