"""What a launcher hands the gateway process, and what the process hands back: the environment
variables it starts with and the JSON files both read (`.router/run/<service>.<pid>.worker.json`).

The one contract between the planes: the control plane (tasks.stack, tasks.services) sets these and
reads the worker file; the gateway reads these and writes it. Neither imports the other's code for it.
"""

from __future__ import annotations

import json
from pathlib import Path

WORKER_FILE_ENV = "FLOWGATE_WORKER_FILE"  # where the server reports readiness (litellm_server.Report)
REPLICAS_ENV = "FLOWGATE_LITELLM_REPLICAS"  # how many instances share the port (tasks.stack.swaps.replicas)
LEAN_UPSTREAM_ENV = "FLOWGATE_LEAN_UPSTREAM"  # CLIProxyAPI's root URL, for the lean path (leanpath)
ACCESS_LOG_ENV = "FLOWGATE_ACCESS_LOG"  # "1": a log line per request (off: it costs ~40% throughput)
KEY_FILE_ENV = "FLOWGATE_GATEWAY_KEY_FILE"  # where the gateway key lives, for the 401's message
RETENTION_ENV = "FLOWGATE_USAGE_RETENTION_DAYS"  # usage.retention_days, for the usage recorder's pruning
RETENTION_DEFAULT = 30  # its default (tasks.config.usagespec takes it from here)


def read_json(path: Path) -> dict | None:
    """A small JSON object from a file either side wrote, or None (missing, damaged, not an object)."""
    from ..base.fsutil import read_small

    raw = read_small(path)  # capped: a damaged file is never read whole
    try:
        data = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
