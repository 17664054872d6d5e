"""`doit help` with FlowGate's tasks: doit's own Help, named in pyproject.toml's [tool.doit.plugins.command].

A bare `doit help` never loads dodo.py, so only a command plugin can add a line to it; doit imports
this module for `help` alone (plugins load on first use), never for `up` or `status`.
"""

from __future__ import annotations

from doit.cmd_help import Help as _DoitHelp


class Help(_DoitHelp):
    """doit's help; its usage page ends by pointing to FlowGate's tasks."""

    def print_usage(self, cmds):
        super().print_usage(cmds)
        print("\nFlowGate's tasks: `uv run doit list` (one line each); `uv run doit help <task>` for one, "
              "e.g. `uv run doit help up`")
