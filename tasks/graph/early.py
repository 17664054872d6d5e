"""Ask early: `doit up` and `doit status` ask every running service whether it answers (and
`status` asks CLIProxyAPI for its accounts). Those GETs go out while dodo.py loads
(tasks.localhttp.send_early), so the services' answers arrive while doit builds its tasks instead
of adding their latency (a few ms each, more when the service's CPU was idle) to the command.

Reads the command from the command line the way doit will: its global options may come first.
"""

from __future__ import annotations

import sys

from ..config.view import cliproxy
from .common import PATHS, read_stack_or_none

# doit's own options that take a value (`-f dodo.py`, `--db-file x`): their value is not the command.
# (doit 0.37's cmd_base and cmd_run option tables; its flags, like -s or -k, take none.)
_VALUED = {"-f", "--file", "-d", "--dir", "--db-file", "--backend", "--check_file_uptodate", "-v", "--verbosity",
           "-o", "--output-file", "-n", "--process", "-r", "--reporter", "-P", "--parallel-type",
           "--failure-verbosity"}


def command_words(argv: list[str]) -> list[str]:
    """The positional words of a doit command line: the command, or the tasks to run."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUED
        else:
            words.append(arg)
    return words[1:] if words[:1] == ["run"] else words


def first_task(argv: list[str]) -> str:
    """The task the command starts with; bare `doit` runs the default task, `up`."""
    words = command_words(argv)
    return words[0] if words else "up"


def ask_early(argv: list[str] | None = None) -> None:
    task = first_task(sys.argv[1:] if argv is None else argv)
    if task not in ("up", "status"):
        return
    from ..stack.watch.probe import send_early

    if send_early(PATHS) and task == "status":
        stack = read_stack_or_none()
        if stack and cliproxy(stack).enabled:
            from ..accounts.inventory import ask_early as ask_accounts

            ask_accounts(PATHS, stack)
