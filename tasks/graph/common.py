"""Shared pieces of the doit layer: settings, the action wrapper, cheap state readers."""

from __future__ import annotations

import functools
import json

from ..errors import FlowgateError
from ..fsutil import PRIVATE_DIR_MODE, ensure_dir
from ..names import SERVICES
from ..paths import Paths
from . import exits, statedb
from .reporter import FlowgateReporter

exits.install()  # first: Ctrl-C from here on ends quietly
PATHS = Paths.from_env()
# doit's sqlite3 state db lives in .router/, which must exist (and be readable) before doit opens it.
ensure_dir(PATHS.router, PRIVATE_DIR_MODE)
statedb.ensure_usable(PATHS.doit_db)

DOIT_CONFIG = {
    "default_tasks": ["up"],
    # sqlite3 survives concurrent writers (dbm and json do not); absolute path so the cwd is moot.
    "backend": "sqlite3",
    "dep_file": str(PATHS.doit_db),
    "reporter": FlowgateReporter,
    "verbosity": 2,
}


def action(fn):
    """Wrap a core function as a doit python-action.

    FlowgateError becomes a TaskFailed that carries the error (clean report, exit 1); a dict
    result is kept as the task's values; anything else counts as success.
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            try:
                result = fn(*args, **kwargs)
            except KeyboardInterrupt:
                # Services run in sessions of their own: Ctrl-C stops this command, not them.
                raise FlowgateError("interrupted", "services already started keep running: "
                                    "`uv run doit status` to see them, `uv run doit down` to stop them") from None
            except BrokenPipeError:
                exits.silence_stdout()  # `doit status | head`: the reader has what it wanted
                from doit.exceptions import TaskFailed

                return TaskFailed("stdout closed by its reader", report=False)
        except FlowgateError as exc:
            from doit.exceptions import TaskFailed

            failed = TaskFailed(exc.one_line())
            failed.flowgate = exc
            return failed
        return result if isinstance(result, dict) else None

    return run


def read_stack() -> dict:
    """The validated config the `config` task wrote (cheap: JSON, no YAML import)."""
    try:
        return json.loads(PATHS.stack_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FlowgateError(f"{PATHS.stack_json} is missing or unreadable",
                            "run `uv run doit config` (or `uv run doit up`) to rebuild it") from None


def read_stack_or_none() -> dict | None:
    try:
        return json.loads(PATHS.stack_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def service_choice(names: list[str]) -> list[str]:
    """The services named on the command line (in stack order), or all of them when none is."""
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise FlowgateError(f"unknown service {unknown[0]!r}", f"name {' or '.join(SERVICES)}, or none for all")
    return [s for s in SERVICES if s in names] or list(SERVICES)


def cheap_to_inspect(creator):
    """A one-line stand-in for a task creator, with its name and doc.

    doit orders task creators by `inspect.getsourcelines`, which tokenizes each creator's whole
    body: ~0.5 ms per creator, ~12 ms of every `doit` command here. The stand-in's body is one line.
    """

    def creator_stand_in(): return creator()  # noqa: E704  (one line on purpose: see above)

    creator_stand_in.__name__ = creator_stand_in.__qualname__ = creator.__name__
    creator_stand_in.__doc__ = creator.__doc__
    return creator_stand_in
