"""Where FlowGate's files live.

`root` is the checkout (templates, dodo.py). `home` holds `config/` and the runtime dir `.router/`;
it is the checkout too unless FLOWGATE_HOME points elsewhere (tests and CI use a temp dir, a user
can keep several stacks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Paths:
    root: Path
    home: Path

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Paths":
        env = os.environ if environ is None else environ
        home = env.get("FLOWGATE_HOME")
        return cls(root=ROOT, home=Path(home).resolve() if home else ROOT)

    # tracked inputs
    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def base_config(self) -> Path:
        return self.config_dir / "flowgate.yaml"

    @property
    def local_config(self) -> Path:
        return self.config_dir / "local.yaml"

    # runtime (.router/, git-ignored)
    @property
    def router(self) -> Path:
        return self.home / ".router"

    @property
    def doit_db(self) -> Path:
        return self.router / "doit.sqlite3"

    @property
    def state_dir(self) -> Path:
        return self.router / "state"

    @property
    def stack_json(self) -> Path:
        """The validated, merged config (active profile applied) as JSON: cheap for tasks to read."""
        return self.state_dir / "stack.json"

    def render_inputs(self, service: str) -> Path:
        """The slice of stack.json that one service's rendered config depends on."""
        return self.state_dir / f"{service}.inputs.json"

    @property
    def secrets_dir(self) -> Path:
        return self.router / "secrets"

    def secret(self, name: str) -> Path:
        return self.secrets_dir / name

    @property
    def bin_dir(self) -> Path:
        return self.router / "bin"

    @property
    def manifest(self) -> Path:
        return self.bin_dir / "manifest.json"

    @property
    def litellm_config(self) -> Path:
        return self.router / "litellm" / "config.yaml"

    @property
    def cliproxy_rendered(self) -> Path:
        """What FlowGate renders. The binary never touches it."""
        return self.router / "cliproxy" / "config.rendered.yaml"

    @property
    def cliproxy_config(self) -> Path:
        """The copy the binary runs with; it rewrites it (bcrypt-hashes the management key)."""
        return self.router / "cliproxy" / "config.yaml"

    @property
    def auths_dir(self) -> Path:
        return self.router / "auths"

    @property
    def run_dir(self) -> Path:
        return self.router / "run"

    def record(self, service: str) -> Path:
        return self.run_dir / f"{service}.json"

    @property
    def logs_dir(self) -> Path:
        return self.router / "logs"

    def log(self, service: str) -> Path:
        return self.logs_dir / f"{service}.log"

    @property
    def events(self) -> Path:
        return self.router / "events.jsonl"

    @property
    def lock(self) -> Path:
        return self.router / "flowgate.lock"
