"""doit's command-line errors in FlowGate's words: one line naming the option, then the task's usage.

doit reports a mistyped option with a repr of its whole option table (`CmdOption({'name': ...})`),
a bad value as `Error parsing parameter 'timeout' <class 'float'>`, an unknown task without a
suggestion. These hooks keep doit's behaviour (exit 3 for a command-line error) and change only
what it says. (`doit help` alone lists doit's commands only: tasks.graph.helpcmd adds FlowGate's.)
"""

from __future__ import annotations

import re

from .posargs import _reason
from .usage import usage_lines


def _options(params) -> list[str]:
    out = []
    for p in params:
        if p.get("long"):
            out.append(f"--{p['long']}")
        if p.get("short"):
            out.append(f"-{p['short']}")
    return out


def explain(task: str, params, exc: Exception) -> str:
    """The one-line reason, a "did you mean", and the usage of `task`."""
    import difflib  # only on a command-line error

    reason = _reason(exc)
    wrong = re.match(r"option (-{1,2}[\w-]+) not recognized", reason)
    if wrong:
        close = difflib.get_close_matches(wrong.group(1), _options(params), n=1, cutoff=0.6)
        reason = f"unknown option {wrong.group(1)}" + (f" (did you mean {close[0]}?)" if close else "")
    elif re.match(r"option \w+ takes", reason):  # a bad value: named by its option, not its param
        name = reason.split()[1]
        longs = [f"--{p['long']}" for p in params if p.get("name") == name and p.get("long")]
        reason = reason.replace(f"option {name}", f"option {longs[0] if longs else name}", 1)
    elif "callback-url requires argument" in reason:
        reason += " (write --callback-url='URL' with the `=`: doit takes a word holding `=` for a variable)"
    usage = next((line for line in usage_lines(task) if line.startswith("usage:")), None)
    return f"doit {task}: {reason}\n  " + (usage or f"`uv run doit help {task}` lists its options")


def suggestion(name: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return f"did you mean `uv run doit {close[0]}`? " if close else ""


def install() -> None:
    """Reword doit's option-parse errors and unknown task names (`doit help`: tasks.graph.helpcmd)."""
    from doit.cmdparse import CmdParseError
    from doit.control import TaskControl
    from doit.exceptions import InvalidCommand
    from doit.task import Task

    if getattr(Task.init_options, "flowgate", False):
        return
    init_options = Task.init_options

    def init_options_worded(self, args=None):
        try:
            return init_options(self, args)
        except CmdParseError as exc:
            raise CmdParseError(explain(self.name, list(self.params) + list(self.creator_params), exc)) from None

    init_options_worded.flowgate = True
    Task.init_options = init_options_worded

    filter_tasks = TaskControl._filter_tasks

    def filter_tasks_suggesting(self, task_selection):
        try:
            return filter_tasks(self, task_selection)
        except InvalidCommand as exc:
            if exc.not_found is not None:
                known = [n for n in self.tasks if not n.startswith("_")]
                known += [n.split(":", 1)[0] for n in known if ":" in n]
                exc.flowgate_hint = suggestion(exc.not_found, known)
            raise

    TaskControl._filter_tasks = filter_tasks_suggesting

    plain_str = InvalidCommand.__str__

    def invalid_str(self):
        if self.not_found is None:
            return plain_str(self)
        from ..base.terminal import printable

        return (f"unknown task {printable(self.not_found)!r}: {getattr(self, 'flowgate_hint', '')}"
                f"`uv run doit list` shows FlowGate's tasks")

    InvalidCommand.__str__ = invalid_str

