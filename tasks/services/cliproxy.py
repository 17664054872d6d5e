"""CLIProxyAPI, the OAuth accounts' proxy: its rendered config and how it is launched (only the
binary, host and port need a restart: it hot-reloads the rest)."""

from __future__ import annotations

import os
from pathlib import Path

from ..base.paths import Paths
from ..config import apikeys
from ..config.names import CLIPROXY
from ..config.view import cliproxy
from .common import Launch, base_url, cliproxy_settings, file_sha, launcher_argv, launcher_env, probe_path
from .secrets import CLIPROXY_API_KEY, CLIPROXY_MANAGEMENT_KEY


CLIPROXY_TEMPLATE = "cliproxy.yaml.j2"


def cliproxy_context(paths: Paths, stack: dict, secrets: dict, auth_dir: str | None = None) -> dict:
    cp = cliproxy(stack)
    return {
        "host": cp.host,
        "port": cp.port,
        "auth_dir": auth_dir or str(paths.auths_dir),  # another one inside a container
        "api_key": secrets[CLIPROXY_API_KEY],
        "management_key": secrets[CLIPROXY_MANAGEMENT_KEY],
        "allow_remote": cp.allow_remote,
        "settings": cliproxy_settings(stack),
        # Provider API keys (cliproxy.api_keys): the keys are read here, into this 0600 file only.
        "provider_keys": apikeys.rendered(paths, list(cp.api_keys or ())),
    }


def render_cliproxy(paths: Paths, stack: dict, secrets: dict, auth_dir: str | None = None) -> str:
    from .render import parse_rendered, render_template

    text = render_template(paths, CLIPROXY_TEMPLATE, cliproxy_context(paths, stack, secrets, auth_dir))
    parse_rendered(CLIPROXY_TEMPLATE, text)
    return text


def cliproxy_launch(paths: Paths, stack: dict, binary: Path, binary_id: str, environ=None,
                    line: str | None = None, service: str = CLIPROXY, config: Path | None = None) -> Launch:
    """`service` and `config`: another instance than the usual one (tasks.stack.swaps.bluegreen's bridge)."""
    cp = cliproxy(stack)
    config = config or paths.cliproxy_config
    environ = os.environ if environ is None else environ
    probe = base_url(cp) + probe_path(CLIPROXY, {"line": line})
    argv = launcher_argv(paths, service, probe) + [str(binary), "-config", str(config)]
    # MANAGEMENT_PASSWORD would force remote management on: never pass it through.
    env = {k: v for k, v in launcher_env(environ).items() if k != "MANAGEMENT_PASSWORD"}
    # Only these need a restart; everything else in its config reaches it by hot reload.
    parts = {"binary": binary_id, "host": cp.host, "port": cp.port, "argv": argv}
    return Launch(service, argv, env, config.parent, cp.host, cp.port, parts,
                  meta={"rendered_sha": file_sha(paths.cliproxy_rendered), "line": line, "launcher": True})
