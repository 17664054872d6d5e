"""One table of the OAuth providers CLIProxyAPI can log in to, and the config entries over it.

A provider is data, not code: its management route, its flow kind, the `type` of the account files
it produces, where a redirect lands, which binary line has it and the binary's own login flag. An
entry of `providers:` in the config may override the route, flow and type of a known provider or
add a new one (a newer binary, a plugin), so that needs no FlowGate release.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.view import cliproxy
from ..release import lines

MAINLINE, PLUS = lines.MAINLINE.name, lines.PLUS.name
REDIRECT, DEVICE, KIRO = "redirect", "device", "kiro"  # kiro: URL / code arrive through the status route
FLOWS = (REDIRECT, DEVICE, KIRO)


class Provider(namedtuple("Provider", "name route flow type callback callback_port lines login_flag query configured",
                          defaults=(None, None, (MAINLINE, PLUS), None, (), False))):
    """One login FlowGate knows.

    name           FlowGate's name: `doit login:<name>`
    route          the management route that starts a login (under /v0/management/)
    flow           REDIRECT or DEVICE
    type           the `type` of the account files it writes
    callback       the provider name the oauth-callback route expects (redirect flows)
    callback_port  where the binary listens for the redirect with is_webui=true
    lines          the binary lines with this login built in
    login_flag     the binary's own login flag, for the fallback
    query          extra query parameters of the start route, as (key, value) pairs
    configured     the route or flow came from the config: trust it over the table
    """

    __slots__ = ()


TABLE = {p.name: p for p in (
    Provider("codex", "codex-auth-url", REDIRECT, "codex", "codex", 1455, (MAINLINE, PLUS), "codex-login"),
    Provider("claude", "anthropic-auth-url", REDIRECT, "claude", "anthropic", 54545, (MAINLINE, PLUS), "claude-login"),
    Provider("copilot", "github-auth-url", DEVICE, "github-copilot", lines=(PLUS,), login_flag="github-copilot-login"),
    Provider("gemini", "gemini-cli-auth-url", REDIRECT, "gemini", "gemini", 8085, (PLUS,), "login"),
    Provider("qwen", "qwen-auth-url", DEVICE, "qwen", lines=(PLUS,), login_flag="qwen-login"),
    Provider("iflow", "iflow-auth-url", REDIRECT, "iflow", "iflow", 11451, (PLUS,), "iflow-login"),
    Provider("antigravity", "antigravity-auth-url", REDIRECT, "antigravity", "antigravity", 51121, (MAINLINE, PLUS),
             "antigravity-login"),
    Provider("kimi", "kimi-auth-url", DEVICE, "kimi", lines=(MAINLINE, PLUS), login_flag="kimi-login"),
    Provider("xai", "xai-auth-url", DEVICE, "xai", lines=(MAINLINE,), login_flag="xai-login"),
    # Builder ID: a device flow, so it works without a browser on this machine.
    Provider("kiro", "kiro-auth-url", KIRO, "kiro", lines=(PLUS,), login_flag="kiro-aws-login", query=(("method", "aws"),)),
)}
ALIASES = {"github-copilot": "copilot", "github": "copilot", "anthropic": "claude", "gemini-cli": "gemini"}


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


def entry_name(entry) -> str:
    """The provider name of a `providers:` entry (a name, or a mapping with `name`)."""
    return canonical(entry["name"] if isinstance(entry, dict) else entry)


def configured_names(stack: dict | None) -> list[str]:
    return [entry_name(e) for e in (stack or {}).get("providers") or []]


def resolve(stack: dict, name: str) -> Provider:
    """The provider `name` as the config describes it (table entry with the config's overrides)."""
    name = canonical(name)
    for entry in stack.get("providers") or []:
        if entry_name(entry) != name:
            continue
        base = TABLE.get(name) or Provider(name, "", DEVICE, name, lines=())
        if not isinstance(entry, dict):
            return base
        overrides = {k: entry[k] for k in ("route", "flow", "type") if entry.get(k)}
        if "route" in overrides:
            overrides["route"] = overrides["route"].strip("/")
        return base._replace(**overrides, configured=bool({"route", "flow"} & set(overrides)))
    configured = ", ".join(configured_names(stack)) or "none"
    raise FlowgateError(f"{name} is not in `providers:` of the config (configured: {configured})",
                        f"add `{name}` to `providers:` in config/local.yaml, then run the command again")


def provider_for_type(account_type: str, stack: dict | None = None) -> str:
    """FlowGate's provider name for an account file's `type` (the type itself when unknown)."""
    configured = [resolve(stack, name) for name in configured_names(stack)]
    for provider in [*configured, *TABLE.values()]:
        if provider.type == account_type:
            return provider.name
    return account_type


# ------------------------------------------------------------------------------ the installed line

def installed_line(paths: Paths) -> str | None:
    """mainline or plus, as recorded by `doit fetch`; None when unknown (then the route decides)."""
    from ..release import installed_line as line_of

    line = line_of(paths)
    return line.name if line else None


def line_fix(provider: str, needs: str) -> str:
    """How to get a line that has `provider`'s login built in."""
    if needs == PLUS:
        return (f"set `cliproxy.release.repo` to a Plus fork (e.g. {lines.EXAMPLE_PLUS_FORK}) and "
                f"`cliproxy.release.version` to one of its tags, or remove {provider} from `providers:`")
    return (f"remove `cliproxy.release.repo` to use the mainline ({lines.MAINLINE_REPO}), or remove {provider} "
            "from `providers:`")


class Unsupported(namedtuple("Unsupported", "provider needs installed")):
    """A configured provider whose login the installed line does not have built in (`needs`: the
    line that has it)."""

    __slots__ = ()

    @property
    def problem(self) -> str:
        return (f"{self.provider} needs the {lines.LINES[self.needs].title} line "
                f"(installed: {lines.LINES[self.installed].title}, {self.installed})")

    @property
    def fix(self) -> str:
        return line_fix(self.provider, self.needs)


def unsupported(stack: dict, line: str) -> list[Unsupported]:
    """The configured providers `line` lacks (a config entry that names its own route is trusted)."""
    out = []
    for name in configured_names(stack):
        provider = resolve(stack, name)
        if not provider.configured and provider.lines and line not in provider.lines:
            out.append(Unsupported(name, provider.lines[0], line))
    return out


def provider_problems(paths: Paths, stack: dict) -> list[Unsupported]:
    """`unsupported` for `doit check`, when the install manifest of the configured repository can tell
    (after a repo change the next fetch decides; a binary of the user's own has no manifest)."""
    from ..release import installed_line as line_of
    from ..release import read_manifest, settings_from_stack
    from ..release.installed import same_repo

    settings = settings_from_stack(stack)
    manifest = read_manifest(paths)
    if settings.binary or not cliproxy(stack).enabled or not manifest or not same_repo(manifest, settings):
        return []
    line = line_of(paths, manifest)
    return unsupported(stack, line.name) if line else []


def _problems_file(paths: Paths) -> Path:
    return paths.state_dir / "providers.unsupported.json"


def remember_problems(paths: Paths, stack: dict) -> None:
    """Keep `provider_problems` where `doit up` reads it for a warning: computed when the config or
    the binary changes (the `config` and `fetch` tasks), read for ~0.1 ms by every `up` (importing
    this table costs ~3 ms there)."""
    import json

    from ..base.fsutil import atomic_write

    found = [{"provider": p.provider, "problem": p.problem, "fix": p.fix} for p in provider_problems(paths, stack)]
    atomic_write(_problems_file(paths), json.dumps(found, sort_keys=True) + "\n")


def require_supported(provider: Provider, line: str | None) -> None:
    """A provider the installed line lacks is a clear error naming the line that has it."""
    if line is None or provider.configured or not provider.lines or line in provider.lines:
        return
    problem = Unsupported(provider.name, provider.lines[0], line)
    raise FlowgateError(f"{provider.name} logins are not built into the installed binary: {problem.problem}",
                        problem.fix)
