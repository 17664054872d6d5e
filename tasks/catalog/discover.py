"""Ask the running CLIProxyAPI what it serves: `GET /v1/models` with its client key (the truth a
client sees), and, through the management API, which account serves which id
(`auth-files`, then `auth-files/models?name=` per active account; a binary without that route still
gets a catalog, attributed by `owned_by`).
"""

from __future__ import annotations

import json
import time

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.view import cliproxy
from . import store
from .routes import protocol_of
from ..gateway.served_models import clean_created

MAX_ANSWER = 4 * 1024 * 1024
OWNER_PROVIDER = {"openai": "codex", "anthropic": "claude"}  # owned_by -> FlowGate's provider, when unattributed


def served_ids(paths: Paths, stack: dict, timeout: float = 5.0) -> list[dict]:
    """`GET /v1/models` of the running binary: [{id, owned_by, created}] (raises FlowgateError)."""
    from ..base.localhttp import exchange
    from ..services.secrets import CLIPROXY_API_KEY, read
    from ..services.common import base_url, connect_host

    cp = cliproxy(stack)
    headers = {"Authorization": f"Bearer {read(paths, CLIPROXY_API_KEY)}", "Accept": "application/json"}
    try:
        status, body = exchange(connect_host(cp.host).strip("[]"), int(cp.port), "GET", "/v1/models",
                                headers=headers, timeout=timeout)
    except OSError as exc:
        raise FlowgateError(f"cannot ask CLIProxyAPI at {base_url(cp)} for its models: "
                            f"{'not running' if isinstance(exc, ConnectionRefusedError) else exc}",
                            "start it with `uv run doit up`") from None
    if status != 200:
        raise FlowgateError(f"CLIProxyAPI answered {status} to GET /v1/models",
                            "`uv run doit restart cliproxy` restores FlowGate's client key")
    if len(body) > MAX_ANSWER:
        raise FlowgateError("CLIProxyAPI's model list is too large (over 4 MB)", "see `uv run doit logs cliproxy`")
    try:
        data = json.loads(body)["data"]
        return [{"id": str(m["id"]), "owned_by": str(m.get("owned_by") or ""),
                 "created": clean_created(m.get("created"))} for m in data if isinstance(m, dict) and m.get("id")]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise FlowgateError("CLIProxyAPI's model list is not the expected JSON",
                            "see `uv run doit logs cliproxy`") from None


def codex_ranks(paths: Paths, stack: dict, timeout: float = 5.0) -> dict[str, int]:
    """{slug: priority} from the binary's Codex catalog (`GET /v1/models?client_version=`, mainline
    since v7.1.4): Codex's own order of its models. Best effort: {} when the binary has none."""
    from ..base.localhttp import exchange
    from ..services.common import connect_host
    from ..services.secrets import CLIPROXY_API_KEY, read

    cp = cliproxy(stack)
    try:
        status, body = exchange(connect_host(cp.host).strip("[]"), int(cp.port), "GET", "/v1/models?client_version=0",
                                headers={"Authorization": f"Bearer {read(paths, CLIPROXY_API_KEY)}"}, timeout=timeout)
        models = json.loads(body)["models"] if status == 200 and len(body) <= MAX_ANSWER else None
        return {m["slug"]: m["priority"] for m in models or []
                if isinstance(m, dict) and isinstance(m.get("slug"), str) and isinstance(m.get("priority"), int)}
    except (OSError, ValueError, KeyError, TypeError, FlowgateError):
        return {}


def _who_serves(paths: Paths, stack: dict) -> tuple[list[dict], dict[str, list[tuple[str, str]]], bool]:
    """(accounts, id -> [(provider, label)], per_account). Best effort: a management failure leaves
    the accounts unknown, never the catalog."""
    from ..accounts.inventory import list_accounts
    from ..accounts.management import Management, RouteMissing

    try:
        client = Management.for_stack(paths, stack)
        accounts = list_accounts(client, stack)
    except FlowgateError:
        return [], {}, False
    listed = [{"name": a.name, "provider": a.provider, "label": a.label or a.name, "active": a.active} for a in accounts]
    serving: dict[str, list[tuple[str, str]]] = {}
    for account in accounts:
        if not account.active:
            continue
        if account.source == "api-key":  # not an account file: the binary registers its family's models
            continue
        try:
            models = client.get("auth-files/models", name=account.name).get("models") or []
        except RouteMissing:
            return listed, {}, False  # an older binary: attribute by owned_by instead
        except FlowgateError:
            continue
        for m in models:
            if isinstance(m, dict) and isinstance(m.get("id"), str):
                serving.setdefault(m["id"], []).append((account.provider, account.label or account.name))
    return listed, serving, True


def read_live(paths: Paths, stack: dict) -> store.Catalog:
    served = served_ids(paths, stack)
    accounts, serving, per_account = _who_serves(paths, stack)
    ranks = codex_ranks(paths, stack) if any(m["owned_by"] == "openai" for m in served) else {}
    models = []
    for m in sorted(served, key=lambda m: m["id"]):
        who = serving.get(m["id"], [])
        providers = sorted({p for p, _ in who}) or [OWNER_PROVIDER.get(m["owned_by"], m["owned_by"] or "?")]
        models.append(store.Served(m["id"], m["owned_by"], m["created"], protocol_of(m["id"]), providers,
                                   sorted({label for _, label in who}),
                                   ranks.get(m["id"]) if m["owned_by"] == "openai" else None))
    return store.Catalog(time.time(), models, accounts, per_account)


def refresh(paths: Paths, stack: dict) -> tuple[store.Catalog, str]:
    """Read live, keep it, and say what changed since the kept one ('' when nothing did)."""
    before = store.read(paths)
    catalog = read_live(paths, stack)
    store.write(paths, catalog)
    return catalog, changes(before, catalog)


def changes(before: store.Catalog | None, after: store.Catalog) -> str:
    old, new = set(before.ids()) if before else set(), set(after.ids())
    if before is not None and old == new:
        return ""
    if not new:
        return "models: no account serves a model now"
    gained, lost = sorted(new - old), sorted(old - new)
    parts = [f"{len(new)} served"]
    if before is not None and gained:
        parts.append("new: " + ", ".join(gained[:6]) + (" ..." if len(gained) > 6 else ""))
    if lost:
        parts.append("no longer served: " + ", ".join(lost[:6]) + (" ..." if len(lost) > 6 else ""))
    return "models: " + "; ".join(parts)


def refresh_quietly(paths: Paths, stack: dict) -> None:
    """After a login, import or account change: refresh and print what changed; never fails the
    command that changed the accounts (the next `doit models` says what is wrong)."""
    if not cliproxy(stack).enabled:
        return
    try:
        _, said = refresh(paths, stack)
    except FlowgateError as exc:
        print(f"models: not refreshed: {exc.one_line()}")
        return
    if said:
        print(said)


def auth_dir_changed_since(paths: Paths, catalog: store.Catalog | None) -> bool:
    """Whether an account file appeared, vanished or was rewritten since the catalog was read (a stat)."""
    if catalog is None:
        return True
    try:
        return paths.auths_dir.stat().st_mtime > catalog.read_at
    except OSError:
        return False


def current(paths: Paths, stack: dict) -> store.Catalog | None:
    """The kept catalog, read afresh first when accounts changed since (or none was kept) and
    CLIProxyAPI answers; the kept one (or None) when it does not."""
    kept = store.read(paths)
    if not cliproxy(stack).enabled or not auth_dir_changed_since(paths, kept):
        return kept
    try:
        return refresh(paths, stack)[0]
    except FlowgateError:
        return kept
