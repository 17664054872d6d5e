"""Shared pieces of the doit layer: settings, the action wrapper, cheap state readers."""

from __future__ import annotations

import functools

from ..base.errors import FlowgateError
from ..base.fsutil import PRIVATE_DIR_MODE, ensure_dir, load_json
from ..base.paths import Paths
from ..config.names import SERVICES
from . import exits, statedb
from .reporter import FlowgateReporter

exits.install()  # first: Ctrl-C from here on ends quietly
PATHS = Paths.from_env()
# doit's sqlite3 state db lives in .router/, which must exist (and be readable) before doit opens it.
ensure_dir(PATHS.router, PRIVATE_DIR_MODE, allow_link=True)
statedb.ensure_usable(PATHS.doit_db)
statedb.write_only_changes()
statedb.guard_writes(PATHS.doit_db)

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


def option(name: str, help: str, type=str, default="", long: str | None = None, short: str | None = None) -> dict:
    """A command-line option of a task (`--long VALUE`); `name` is the action's parameter."""
    spec = {"name": name, "long": long or name.replace("_", "-"), "type": type, "default": default, "help": help}
    return {**spec, "short": short} if short else spec


def flag(name: str, help: str, long: str | None = None, short: str | None = None) -> dict:
    """A yes/no option (`--long`), off by default."""
    return option(name, help, bool, False, long, short)


JSON_FLAG = flag("json_output", "print JSON for scripts", long="json")


def command(fn, *params: dict, args: list | None = None, **more) -> dict:
    """A task that runs every time it is asked for and prints only what `fn` prints: FlowGate's
    commands (status, usage, accounts, ...), as against the file-producing tasks of the graph.
    `args`: positional arguments for `fn` (a task per provider or client)."""
    run = (action(fn), args) if args else action(fn)
    return {"actions": [run], "params": list(params), "uptodate": [False], "meta": {"quiet": True}, **more}


def read_stack() -> dict:
    """The validated config the `config` task wrote (cheap: JSON, no YAML import)."""
    try:
        return load_json(PATHS.stack_json)
    except (OSError, ValueError):
        raise FlowgateError(f"{PATHS.stack_json} is missing or unreadable",
                            "run `uv run doit config` (or `uv run doit up`) to rebuild it") from None


def read_stack_or_none() -> dict | None:
    try:
        return load_json(PATHS.stack_json)
    except (OSError, ValueError):
        return None


def service_choice(names: list[str]) -> list[str]:
    """The services named on the command line (in stack order), or all of them when none is."""
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise FlowgateError(f"unknown service {unknown[0]!r}", f"name {' or '.join(SERVICES)}, or none for all")
    return [s for s in SERVICES if s in names] or list(SERVICES)


def one_creator(creators):
    """Every task creator as one, for doit.

    doit orders task creators by `inspect.getsourcelines`, which costs ~45 us per creator after the
    first (which also compiles tokenize's patterns, ~3 ms, and which doit's own floor pays too).
    One creator that yields every task under its own basename is inspected once. Each creator's
    docstring stays the doc of its tasks (a group task's too).
    """

    def task_flowgate():
        for creator in creators:
            basename, doc = creator.__name__[len("task_"):], creator.__doc__
            made = creator()
            if isinstance(made, dict):
                yield {"doc": doc, **made, "basename": basename}
                continue
            yield {"basename": basename, "name": None, "doc": doc}  # the group of its subtasks
            for task in made:
                yield {"doc": doc, **task, "basename": basename}

    return task_flowgate
