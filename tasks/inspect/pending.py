"""What `doit up` would change right now: `status` reports it, changing nothing.

Cheap on the no-op path: config files are parsed only when their sha256 differs from what the
`config` task built stack.json from; everything else compares files FlowGate already reads
(input slices, the manifest, the process records).
"""

from __future__ import annotations

import json

from ..base.errors import FlowgateError
from ..base.fsutil import load_json
from ..base.paths import Paths
from ..config.names import CLIPROXY, LITELLM, OPTIONAL, RENDERED, enabled_services


def config_sources(paths: Paths) -> dict:
    """sha256 of each config file as it is now (the `config` task records this beside stack.json)."""
    from ..services.common import file_sha

    return {p.name: file_sha(p) for p in (paths.base_config, paths.local_config) if p.exists()}


def _config_edited(paths: Paths) -> bool:
    try:
        recorded = load_json(paths.config_sources)
    except (OSError, ValueError):
        return True
    return recorded != config_sources(paths)


# What `up` would stop at: pending lines starting so mean "fix the config", not "run up".
BLOCKED = ("config is invalid", "config refers to missing secrets")


def effective_stack(paths: Paths, stack: dict | None) -> tuple[dict | None, list[str]]:
    """The config `up` would run with, and what is pending about the config itself."""
    if stack is not None and not _config_edited(paths):
        return stack, []
    from ..config.load import load_stack
    from ..config.references import check_references

    try:
        new = load_stack(paths)
    except FlowgateError as exc:
        return None, [f"config is invalid, `doit up` would stop at it: {exc.message} (`uv run doit check` lists the problems)"]
    missing = check_references(paths, new)
    if missing:
        return None, [f"config refers to missing secrets, `doit up` would stop at it: {missing[0]}"]
    return new, ([] if new == stack else ["apply the edited config (config/*.yaml changed since the last `doit up`)"])


def _key_digests(paths: Paths, stack: dict) -> dict:
    from ..services.common import file_sha
    from ..services.litellm import litellm_key_files

    return {str(p): file_sha(p) for p in litellm_key_files(paths, stack)}


def remember_key_files(paths: Paths, stack: dict) -> None:
    """What the key files held when LiteLLM's config was rendered (0600: a digest of a short
    password is guessable)."""
    from ..base.fsutil import PRIVATE_FILE_MODE, atomic_write

    atomic_write(paths.rendered_keys, json.dumps(_key_digests(paths, stack), sort_keys=True) + "\n",
                 mode=PRIVATE_FILE_MODE)


def _keys_changed(paths: Paths, stack: dict) -> bool:
    try:
        rendered = load_json(paths.rendered_keys)
    except (OSError, ValueError):
        return False  # rendered by an older FlowGate: unknown, and `up` would not re-render for it
    return rendered != _key_digests(paths, stack)


def _render_pending(paths: Paths, stack: dict, service: str) -> bool:
    from ..services.common import render_inputs

    try:
        written = load_json(paths.render_inputs(service))
    except (OSError, ValueError):
        return True
    target = paths.litellm_config if service == LITELLM else paths.cliproxy_rendered
    return written != json.loads(json.dumps(render_inputs(stack, service))) or not target.exists() \
        or (service == LITELLM and _keys_changed(paths, stack))


def _binary_pending(paths: Paths, stack: dict) -> str | None:
    from ..release.installed import binary_intact, config_satisfied, read_manifest
    from ..release.settings import settings_from_stack

    settings = settings_from_stack(stack)
    if settings.binary:
        return None
    manifest = read_manifest(paths)
    wanted = f"{settings.repo} {settings.version}"
    if not manifest:
        return f"fetch: install CLIProxyAPI {wanted}"
    if not config_satisfied(manifest, settings):
        if settings.is_latest and manifest.get("requested") == "latest":
            return "fetch: ask GitHub whether a newer release is out (check_interval_hours passed)"
        return f"fetch: update CLIProxyAPI to {wanted} (installed: {manifest.get('repo')} {manifest.get('tag')})"
    if not binary_intact(paths, manifest, refresh=False):
        return "fetch: reinstall CLIProxyAPI (the installed binary no longer matches its manifest)"
    return None


def _service_pending(paths: Paths, stack: dict, service: str, rerender: bool, answered: bool | None) -> str | None:
    from ..services.common import restart_reasons
    from ..config.names import service_of
    from ..config.view import litellm, of
    from ..stack.swaps import replicas
    from ..stack.watch import health
    from ..stack import process
    from ..stack.launch.launches import launch_for

    record = process.read_record(paths.record(service))
    if record is None or not process.is_alive(record):
        return f"start {service}"
    if rerender:
        return f"re-render {service}'s config, then " + ("hot-reload it" if service == CLIPROXY else "restart it if it changed")
    try:
        launch = launch_for(paths, stack, service)
    except FlowgateError as exc:
        return f"stop at {service}: {exc.message}"
    if record.inputs_hash != launch.inputs_hash:
        why = ", ".join(restart_reasons(record.meta.get("parts", {}), launch.parts))
        return f"restart {service}: {why}"
    if service == CLIPROXY and record.meta.get("rendered_sha") != launch.meta["rendered_sha"]:
        return "hot-reload cliproxy: config changed"
    hung = health.hung_reason(of(stack, service_of(service)), service, record, answered=answered, paths=paths,
                              shared=replicas.several(litellm(stack)))
    return f"restart {service}: {hung}" if hung else None


def pending(paths: Paths, stack: dict | None, answered: dict | None = None) -> list[str]:
    """One line per change `doit up` would make (empty: the stack matches the config).

    `answered`: service -> whether it just answered its probe (status has asked already).
    """
    new, out = effective_stack(paths, stack)
    if new is None:
        return out
    from ..services.secrets import all_present

    if not all_present(paths, new):
        out.append("generate the missing secrets in .router/secrets/")
    services = enabled_services(new)
    rerender = {s: s in RENDERED and _render_pending(paths, new, s) for s in services}
    if CLIPROXY in services:
        binary = _binary_pending(paths, new)
        if binary:
            out.append(binary)
    for service in services:
        item = _service_pending(paths, new, service, rerender[service], (answered or {}).get(service))
        if item:
            out.append(item)
    if CLIPROXY not in services and process_record_exists(paths, CLIPROXY):
        out.append("stop cliproxy (cliproxy.enabled is false)")
    for optional in OPTIONAL:
        if optional not in services and process_record_exists(paths, optional):
            out.append(f"stop {optional} ({optional}.managed is false)")
    from ..pool import service as steward

    if not steward.is_current(paths, new):
        out.append("stop the account pool's steward and put back the accounts it took out (accounts.steering is false)"
                   if not steward.wanted(new)
                   else "start the account pool's steward" if steward.running(paths) is None
                   else "restart the account pool's steward (accounts: changed)")
    return out


def process_record_exists(paths: Paths, service: str) -> bool:
    return paths.record(service).exists()
