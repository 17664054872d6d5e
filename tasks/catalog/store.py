"""The kept catalog: what CLIProxyAPI served when FlowGate last asked, in .router/state/catalog.json.

Read by `doit models`, `status`, `integrate:*` and `smoke` without a request; rewritten by
`discover.refresh` after `up` (when the binary or its accounts changed), after every login, import
and account change, and by `doit models`.
"""

from __future__ import annotations

import json
import time
from collections import namedtuple

from ..base.paths import Paths

MAX_BYTES = 4 * 1024 * 1024  # a catalog of a few hundred ids is ~100 kB; anything past this is not ours


class Served(namedtuple("Served", "id owned_by created protocol providers accounts rank", defaults=(None,))):
    """One served id: who owns it upstream, how LiteLLM speaks to it, which providers/accounts serve it;
    rank: its place in Codex's own order (CLIProxyAPI's Codex catalog `priority`, lower first), None
    when not a Codex model or not known."""

    __slots__ = ()


class Catalog(namedtuple("Catalog", "read_at models accounts per_account")):
    """read_at: epoch seconds; models: [Served]; accounts: [{name, provider, label, active}];
    per_account: whether the binary said which account serves what (auth-files/models)."""

    __slots__ = ()

    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def get(self, model_id: str) -> Served | None:
        return next((m for m in self.models if m.id == model_id), None)

    def age(self) -> float:
        return max(0.0, time.time() - self.read_at)


def path(paths: Paths):
    return paths.state_dir / "catalog.json"


def read(paths: Paths) -> Catalog | None:
    """The kept catalog, or None when there is none (or it is not one FlowGate wrote)."""
    from ..base.fsutil import read_regular

    try:
        raw, _ = read_regular(path(paths), MAX_BYTES)
        data = json.loads(raw)
        models = [Served(str(m["id"]), str(m.get("owned_by") or ""), int(m.get("created") or 0),
                         str(m["protocol"]), list(m.get("providers") or []), list(m.get("accounts") or []),
                         m.get("rank") if isinstance(m.get("rank"), int) else None)
                  for m in data["models"]]
        return Catalog(float(data["read_at"]), models, list(data.get("accounts") or []), bool(data.get("per_account")))
    except Exception:  # missing, odd or foreign: as if never read (the next refresh rewrites it)
        return None


def write(paths: Paths, catalog: Catalog) -> bool:
    from ..base.fsutil import atomic_write

    data = {"read_at": catalog.read_at, "per_account": catalog.per_account, "accounts": catalog.accounts,
            "models": [m._asdict() for m in catalog.models]}
    return atomic_write(path(paths), json.dumps(data, indent=2, sort_keys=True) + "\n")
