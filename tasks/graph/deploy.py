"""Tasks that export the stack for a team: export:k8s, export:compose (core: tasks/deploy/).

File dependencies: stack.json, the secrets, the templates, key files the config names. doit parses
`--out` / `--existing-secret` after the subtask's full name; the `uptodate` check compares them, the
values of the environment variables the export copies (hashed) and the files it wrote, so a second
run with nothing changed does not even run, and one that runs rewrites only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .build import SECRET_FILES
from .common import PATHS, action, option, read_stack, read_stack_or_none

DEFAULT_OUT = {"k8s": ("deploy", "k8s"), "compose": ("deploy", "compose")}
SERVICE_TEMPLATES = ("litellm.yaml.j2", "cliproxy.yaml.j2")  # tasks.services renders the configs from these


def _out_dir(target: str, out: str | None) -> Path:
    return Path(os.path.abspath(os.path.expanduser(out))) if out else PATHS.home.joinpath(*DEFAULT_OUT[target])


def _env_hash(stack: dict | None) -> str:
    from ..deploy.inputs import env_names

    names = env_names(stack) if stack else []
    return hashlib.sha256(json.dumps({n: os.environ.get(n, "") for n in names}).encode()).hexdigest()


def _fingerprint(target: str, options: dict, stack: dict | None) -> dict:
    existing = options.get("existing_secret")
    return {"out": str(_out_dir(target, options.get("out"))), "existing_secret": existing,
            # An existing Secret: nothing is read from the environment.
            "env": None if existing else _env_hash(stack)}


def export(target: str, out: str | None, existing_secret: str | None = None) -> dict:
    from ..deploy import compose, k8s

    stack = read_stack()
    out_dir = _out_dir(target, out)
    _require_dir(out_dir)
    if target == "k8s":
        result = k8s.export(PATHS, stack, out_dir, existing_secret)
    else:
        result = compose.export(PATHS, stack, out_dir)
    for line in result.lines(_display):
        print(line)
    if result.written and target == "k8s":
        print(f"apply with: kubectl apply -f {_display(out_dir)}")
    elif result.written:
        print(f"run with: docker compose --project-directory {_display(out_dir)} up -d")
    options = {"out": out, "existing_secret": existing_secret}
    return {**_fingerprint(target, options, stack), "files": result.files}


def _require_dir(out_dir: Path) -> None:
    """--out names a directory (created when missing), never an existing file or a link to one."""
    from ..base.errors import FlowgateError

    hint = "give a directory for the export's files (it is created when missing)"
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise FlowgateError(f"--out {_display(out_dir)} exists and is not a directory", hint)
    existing = next((p for p in out_dir.parents if os.path.lexists(p)), None)  # created only once all is known
    if existing is not None and not existing.is_dir():
        raise FlowgateError(f"--out {_display(out_dir)}: {_display(existing)} is not a directory", hint)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _current(target: str):
    def uptodate(task, values) -> bool:
        from ..deploy.output import sha256

        if not values.get("files"):
            return False
        expected = _fingerprint(target, task.options or {}, read_stack_or_none())
        if any(values.get(k) != v for k, v in expected.items()):
            return False
        return all(sha256(Path(path)) == sha for path, sha in values["files"].items())
    return uptodate


def _inputs(target: str) -> list[str]:
    from ..deploy.inputs import input_files

    templates = [PATHS.templates / name for name in SERVICE_TEMPLATES]
    templates += sorted((PATHS.templates / target).glob("*.j2"))
    stack = read_stack_or_none()
    return [str(PATHS.stack_json), *SECRET_FILES, *map(str, templates), *(input_files(PATHS, stack) if stack else [])]


_OUT = option("out", "directory to write to", default=None)


def task_export():
    """Write the stack for a team: export:k8s (Kubernetes manifests), export:compose (Docker Compose)."""
    yield {
        "name": "k8s",
        "doc": "Kubernetes manifests into deploy/k8s/ (--out DIR, --existing-secret NAME); apply with kubectl",
        "actions": [(action(export), ["k8s"])],
        "params": [_OUT, option("existing_secret", "reference this Secret in the cluster instead of writing secret.yaml",
                                default=None)],
        "file_dep": _inputs("k8s"),
        "uptodate": [_current("k8s")],
    }
    yield {
        "name": "compose",
        "doc": "Docker Compose file + .env (0600) into deploy/compose/ (--out DIR)",
        "actions": [(action(export), ["compose"])],
        "params": [_OUT],
        "file_dep": _inputs("compose"),
        "uptodate": [_current("compose")],
    }
