"""Where FlowGate's files live.

`root` is the checkout (templates, dodo.py). `home` holds `config/` and the runtime dir `.router/`;
it is the checkout too unless FLOWGATE_HOME points elsewhere (tests and CI use a temp dir, a user
can keep several stacks).
"""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # tasks/base/paths.py -> the checkout


class _under:
    """A path below another attribute of Paths (`root`, `home`, `router`, ...), joined once per Paths
    value: a no-op `doit up` asks for these a few hundred times (~3 us per join)."""

    _joined: dict = {}  # (Paths, descriptor) -> Path; Paths values are immutable

    def __init__(self, base: str, *parts: str):
        self.base, self.parts = base, parts

    def __get__(self, paths, owner=None):
        if paths is None:
            return self
        try:
            return self._joined[paths, self]
        except KeyError:
            path = self._joined[paths, self] = getattr(paths, self.base).joinpath(*self.parts)
            return path


class Paths(namedtuple("Paths", "root home")):
    """`root` (the checkout) and `home` (config/ and .router/), and every path below them.

    A collections.namedtuple, like the other small value types every `doit up` / `doit status`
    loads: building a dataclass costs 0.3-0.7 ms at import (it compiles its methods), a
    typing.NamedTuple ~0.2 ms (it compiles each annotation), a namedtuple ~0.06 ms.
    """

    __slots__ = ()

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Paths":
        env = os.environ if environ is None else environ
        home = env.get("FLOWGATE_HOME")
        return cls(root=ROOT, home=Path(home).resolve() if home else ROOT)

    # tracked inputs
    templates = _under("root", "templates")
    config_dir = _under("home", "config")
    base_config = _under("config_dir", "flowgate.yaml")
    local_config = _under("config_dir", "local.yaml")  # the user's, untracked

    # runtime (.router/, git-ignored)
    router = _under("home", ".router")
    doit_db = _under("router", "doit.sqlite3")
    state_dir = _under("router", "state")
    stack_json = _under("state_dir", "stack.json")  # the validated config, active profile applied: cheap to read
    config_sources = _under("state_dir", "config.sources.json")  # sha256 of the config files stack.json came from
    rendered_keys = _under("state_dir", "litellm.keys.json")  # sha256 of the key files LiteLLM's config was rendered with
    secrets_dir = _under("router", "secrets")
    bin_dir = _under("router", "bin")
    manifest = _under("bin_dir", "manifest.json")
    litellm_config = _under("router", "litellm", "config.yaml")
    litellm_auth_hook = _under("router", "litellm", "flowgate_auth.py")  # general_settings.custom_auth
    cliproxy_rendered = _under("router", "cliproxy", "config.rendered.yaml")  # what FlowGate renders
    cliproxy_config = _under("router", "cliproxy", "config.yaml")  # the copy the binary runs with (and rewrites)
    auths_dir = _under("router", "auths")
    run_dir = _under("router", "run")
    logs_dir = _under("router", "logs")
    events = _under("router", "events.jsonl")
    outdated_cache = _under("state_dir", "outdated.json")  # what `doit outdated` learnt from GitHub and PyPI
    quota_cache = _under("state_dir", "quota.json")  # the providers' quota answers, kept 60 s (tasks.accounts.quota)
    pool_state = _under("state_dir", "pool.json")  # the steward's view of the account pool (tasks.pool, tasks.gateway.steered)
    pool_marks = _under("state_dir", "pool.user.json")  # accounts the user disabled through FlowGate (tasks.accounts.pool_state)
    usage_db = _under("router", "usage.sqlite3")  # every request through the gateway (tasks.usage)
    keys_db = _under("router", "keys.sqlite3")  # the team's member keys, hashed (tasks.keys, tasks.gateway.keys)
    dashboard_token = _under("secrets_dir", "dashboard_token")  # the dashboard URL's token (tasks.gateway.dashboard)
    profile_choice = _under("router", "profile.json")  # `doit profile NAME`: survives a pull of config/
    lock = _under("router", "flowgate.lock")

    def render_inputs(self, service: str) -> Path:
        """The slice of stack.json that one service's rendered config depends on."""
        return self.state_dir / f"{service}.inputs.json"

    def secret(self, name: str) -> Path:
        return self.secrets_dir / name

    def record(self, service: str) -> Path:
        return self.run_dir / f"{service}.json"

    def log(self, service: str) -> Path:
        return self.logs_dir / f"{service}.log"

    def user_path(self, value: str) -> Path:
        """A path the user wrote in the config (a key file, a binary): `~` expanded, relative to the home."""
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else self.home / path
