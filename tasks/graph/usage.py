"""`doit help <task>`: what each user-facing command takes, with an example.

doit keeps only the first line of a task's doc and lists declared options, so `doit help up` was a
single line and positional words (`doit logs litellm`) were never mentioned. This table adds the
synopsis and examples after doit's own lines; `doit list` stays one line per task.
"""

from __future__ import annotations

# task (or task family before ":") -> lines printed after doit's own help
USAGE: dict[str, tuple[str, ...]] = {
    "up": ("usage: uv run doit up   (the default task: `uv run doit` does the same)",
           "no options: it makes the stack match config/flowgate.yaml + config/local.yaml",
           "example: uv run doit up && uv run doit smoke",
           "see first what it would change: uv run doit status"),
    "status": ("usage: uv run doit status [--json]",
               "exit 0 only when every enabled service is ready and nothing is pending",
               "example: uv run doit status --json | jq '.services[].state'"),
    "down": ("usage: uv run doit down   (no options; idempotent)",
             "example: uv run doit down"),
    "restart": ("usage: uv run doit restart [litellm|cliproxy]...   (none named: both)",
                "example: uv run doit restart litellm"),
    "logs": ("usage: uv run doit logs [litellm|cliproxy]... [-n|--lines N] [-f|--follow]   (options anywhere)",
             "example: uv run doit logs litellm -n 50 -f"),
    "check": ("usage: uv run doit check   (no options; writes nothing, exit 1 on any problem)",
              "example: uv run doit check && git commit config/"),
    "render": ("usage: uv run doit render   (no options; writes only where inputs changed)",
               "example: uv run doit render"),
    "fetch": ("usage: uv run doit fetch   (no options; the release comes from cliproxy.release in config/)",
              "example: uv run doit fetch   (GITHUB_TOKEN is sent when set)"),
    "outdated": ("usage: uv run doit outdated [--json] [--refresh]   (informational: exit 0 unless the config is bad)",
                 "example: uv run doit outdated --refresh"),
    "upgrade": ("usage: uv run doit upgrade [--to TAG] [--repo OWNER/NAME]   (exit 1 when it rolled back)",
                "example: uv run doit upgrade --repo kaitranntt/CLIProxyAPIPlus --to v6.9.8-0"),
    "rollback": ("usage: uv run doit rollback   (no options; needs no network)",
                 "example: uv run doit rollback"),
    "doctor": ("usage: uv run doit doctor   (no options; read-only)",
               "example: uv run doit doctor"),
    "login": ("usage: uv run doit login:<provider> [--no-browser] [--callback-url=URL] [--timeout SECONDS] [--add]",
              "example: uv run doit login:codex --no-browser",
              "keep the `=` in --callback-url=URL (doit reads NAME=VALUE words as variables)"),
    "accounts": ("usage: uv run doit accounts [--json] [--disable NAME | --enable NAME | --remove NAME]",
                 "example: uv run doit accounts --disable codex-you@example.com.json"),
    "import": ("usage: uv run doit import:codex [--file PATH]",
               "example: uv run doit import:codex --file ~/.codex/auth.json"),
    "integrate": ("usage: uv run doit integrate:codex|integrate:claude [--apply] [--restore] [--profile-only] [--key NAME]",
                  "example: uv run doit integrate:codex --apply"),
    "smoke": ("usage: uv run doit smoke [--model NAME] [--json] [--timeout S]",
              "example: uv run doit up && uv run doit smoke --model claude-sonnet-4-6 --timeout 30"),
    "usage": ("usage: uv run doit usage [--since 24h|7d|30m|2w] [--by model|day|hour|account|key[,...]] [--json | --csv]",
              "example: uv run doit usage --since 24h --by hour",
              "per CLIProxyAPI account, and what your subscriptions saved: uv run doit usage --by account"),
    "dashboard": ("usage: uv run doit dashboard [--no-browser]   (LiteLLM must be running: it serves the page)",
                  "example: uv run doit dashboard --no-browser"),
    "keys": ("usage: uv run doit keys [list [--json] | create NAME [--rpm N] [--models PATTERN]... [--expires DATE]"
             " [--budget USD --period day|week|month] [--tpm N] [--keep] | revoke NAME | rotate NAME [--keep]]"
             "   (options anywhere)",
             "example: uv run doit keys create ana --models 'gpt-5*' --rpm 60   (the key is shown once)"),
    "models": ("usage: uv run doit models [--json]",
               "example: uv run doit models --json"),
}


def usage_lines(task_name: str) -> tuple[str, ...]:
    return USAGE.get(task_name) or USAGE.get(task_name.split(":", 1)[0], ())


def install() -> None:
    """Print the usage lines after doit's own `help <task>` output (doit is loaded by now anyway)."""
    from doit.cmd_help import Help

    if getattr(Help._execute, "flowgate", False):
        return
    original = Help._execute

    def _execute(self, pos_args):
        found = original(self, pos_args)
        if found:
            for line in usage_lines(pos_args[0]):
                print(line)
        return found

    _execute.flowgate = True
    Help._execute = _execute
