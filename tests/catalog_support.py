"""The real registry's catalog (tests/fakes/models.json, what the CLIProxyAPI double serves) as
FlowGate's kept catalog, for tests that need what accounts serve without running the binary."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tasks.catalog import store
from tasks.catalog.discover import OWNER_PROVIDER
from tasks.catalog.routes import protocol_of

REGISTRY = Path(__file__).resolve().parent / "fakes" / "models.json"
CODEX_CATALOG = REGISTRY.with_name("codex_client_models.json")  # the double's Codex catalog: its priorities


def registry() -> dict:
    return {k: v for k, v in json.loads(REGISTRY.read_text()).items() if isinstance(v, list)}


def catalog(*channels: str) -> store.Catalog:
    """What accounts of `channels` (e.g. codex-plus, claude) serve, attributed by owned_by."""
    models: dict[str, store.Served] = {}
    ranks = {m["slug"]: m["priority"] for m in json.loads(CODEX_CATALOG.read_text())["models"]}
    for channel in channels:
        for m in registry()[channel]:
            provider = OWNER_PROVIDER.get(m["owned_by"], m["owned_by"])
            models.setdefault(m["id"], store.Served(m["id"], m["owned_by"], m["created"], protocol_of(m["id"]),
                                                    [provider], [], ranks.get(m["id"]) if m["owned_by"] == "openai" else None))
    return store.Catalog(time.time(), sorted(models.values()), [], False)


def keep(paths, *channels: str) -> store.Catalog:
    """Write the catalog of `channels` as the kept one (what `doit models` would have read)."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    made = catalog(*channels)
    store.write(paths, made)
    return made
