"""Quiet exits: a reader that closed our stdout (`doit status --json | head`), Ctrl-C outside an action.

Neither is a bug, so neither gets a traceback. Actions turn Ctrl-C into a FlowgateError themselves
(tasks.graph.common.action); this covers the moments around them: loading dodo.py, doit's task
loading and up-to-date checks.
"""

from __future__ import annotations

import os
import sys



def debug_enabled() -> bool:
    return os.environ.get("FLOWGATE_DEBUG", "") not in ("", "0", "false", "no")


def silence_stdout() -> None:
    """Send whatever is still to be written to stdout to /dev/null: its reader has gone."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def install() -> None:
    """A last-resort hook for the two exceptions that mean "the user is done", not "FlowGate broke"."""
    previous = sys.excepthook
    if getattr(previous, "flowgate", False):
        return

    def hook(kind, value, tb):
        if debug_enabled():
            return previous(kind, value, tb)
        if issubclass(kind, KeyboardInterrupt):
            sys.stderr.write("interrupted: services already running keep running "
                             "(`uv run doit status` shows them, `uv run doit down` stops them)\n")
        elif issubclass(kind, BrokenPipeError):
            silence_stdout()
        else:
            previous(kind, value, tb)

    hook.flowgate = True
    sys.excepthook = hook
