"""The `outdated` task: the installed CLIProxyAPI and LiteLLM against their newest releases (core:
tasks/release/outdated.py). Informational: exit 0 whatever it finds, offline included."""

from __future__ import annotations

from .common import JSON_FLAG, PATHS, command, flag, read_stack


def show_outdated(json_output: bool, refresh: bool) -> None:
    from ..base.errors import FlowgateError
    from ..config.view import cliproxy
    from ..release import outdated, settings_from_stack
    from ..services.litellm import litellm_version

    stack = read_stack()
    try:
        installed = litellm_version()
    except FlowgateError:
        installed = None
    report = outdated.check(PATHS, settings_from_stack(stack), enabled=cliproxy(stack).enabled,
                            litellm_installed=installed, refresh=refresh)
    if json_output:
        import json

        print(json.dumps(report, indent=2))
        return
    from ..release.outdated_text import report_lines

    print("\n".join(report_lines(report)))


def task_outdated():
    """Installed CLIProxyAPI and LiteLLM against their newest releases (cached; --refresh, --json)."""
    return command(show_outdated, JSON_FLAG, flag("refresh", "ask GitHub and PyPI now, whatever the cache holds"),
                   task_dep=["config"])
