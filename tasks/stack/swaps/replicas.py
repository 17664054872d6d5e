"""LiteLLM replicas (`litellm.replicas: N`): N supervised instances serving one address.

Instance 1 keeps the service's own files (run/litellm.json, logs/litellm.log), so one replica is
exactly the stack FlowGate always ran; instance k is `litellm#k` (run/litellm#k.json, ...). The
kernel spreads connections over them (SO_REUSEPORT), so the shared address tells nothing about one
instance: each is probed on the private port its server reports in its worker file.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...base.paths import Paths
from ...config.names import LITELLM, litellm_instances
from ..launch.launcher_files import read_json
_RECORD = rf"^{LITELLM}(?:#(\d+))?\.json$"  # compiled by `re` on first use


def number(name: str) -> int:
    return int(name.split("#", 1)[1]) if "#" in name else 1


def recorded(paths: Paths) -> list[str]:
    """The LiteLLM instances that have a run record (running or not), in order."""
    try:
        names = [m.group(0)[:-5] for p in paths.run_dir.iterdir() if (m := re.match(_RECORD, p.name))]
    except FileNotFoundError:
        return []
    return sorted(names, key=number)


def extras(paths: Paths, wanted: list[str]) -> list[str]:
    """Recorded instances beyond `wanted` (names.litellm_instances: the count went down): to be stopped."""
    return [name for name in recorded(paths) if name not in set(wanted)]


def several(lite) -> bool:
    """Whether instances must be probed one by one (a single one is probed on its address, as always).
    `lite`: the LiteLLM settings (config.view.litellm), or None without a config."""
    return lite is not None and int(lite.replicas or 1) > 1


def probe_target(record) -> tuple[str, int] | None:
    """127.0.0.1 and the private probe port of the instance `record` runs, None while unknown."""
    run_dir = record.meta.get("run_dir") if record is not None else None
    if not run_dir:
        return None
    data = read_json(Path(run_dir) / f"{record.service}.{record.pid}.worker.json") or {}
    port = data.get("probe_port")
    return ("127.0.0.1", int(port)) if isinstance(port, int) else None


def probe_address(shared: bool, record, host: str, port: int) -> tuple[str, int] | None:
    """Where to probe the instance `record` runs: its private port when several share the address
    (`shared`: several(); None until its server reported it), else the address itself."""
    if shared and record is not None and record.meta.get("run_dir"):
        return probe_target(record)
    return host, port
