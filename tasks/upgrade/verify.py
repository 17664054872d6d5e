"""The checks a new CLIProxyAPI passes before traffic moves to it: the smoke test of `doit smoke`,
sent straight to the new instance (its bridge address) for one model per provider it serves."""

from __future__ import annotations

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..base.terminal import printable
from ..services.secrets import CLIPROXY_API_KEY, read

MODELS_LIMIT = 4 * 1024 * 1024  # a catalog is a few KiB


def served_by(url: str, key: str, timeout: float) -> list[tuple[str, str]]:
    """[(id, owned_by)] the instance at `url` lists on /v1/models."""
    import httpx

    try:
        with httpx.Client(timeout=timeout) as client:
            resp = client.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        raise FlowgateError(f"the new CLIProxyAPI did not answer /v1/models: {type(exc).__name__}") from None
    if resp.status_code != 200 or len(resp.content) > MODELS_LIMIT:
        raise FlowgateError(f"the new CLIProxyAPI answered /v1/models with HTTP {resp.status_code}")
    try:
        data = resp.json().get("data")
        return [(str(m["id"]), str(m.get("owned_by") or "")) for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
    except (ValueError, AttributeError, TypeError, KeyError):
        raise FlowgateError("the new CLIProxyAPI answered /v1/models with something that is not a model list") from None


def pick(paths: Paths, stack: dict, served: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One (id, protocol) per provider: the clients' slot where the new build still serves it."""
    from ..catalog import choose, store
    from ..catalog.routes import protocol_of

    kept = store.read(paths)
    preferred = []
    for client in ("codex", "claude"):
        chosen = choose.slots(stack, kept, client)
        preferred += [chosen["model"], chosen["fast_model"]]
    picked = {}
    for model_id, owner in served:
        current = picked.get(owner)
        if current is None or (model_id in preferred and current not in preferred):
            picked[owner] = model_id
    return [(m, protocol_of(m)) for m in picked.values()]


def smoke(paths: Paths, stack: dict, url: str, out=print, timeout: float = 60.0) -> str:
    """Raise FlowgateError naming the first failed check; the one-line result otherwise."""
    from ..clients import smoke as checks

    key = read(paths, CLIPROXY_API_KEY)
    served = served_by(url, key, timeout)
    if not served:  # nothing to send a request for: said, so a skipped test never reads as a passed one
        out("cliproxy: smoke test skipped on the new instance: no account serves a model yet (it was checked "
            "for readiness only); after a login, `uv run doit smoke` runs it")
        return "no account serves a model yet: readiness only"
    models = pick(paths, stack, served)
    done = []
    for check in checks.run(paths, stack, models, [m for m, _ in served], timeout, base=url, key=key):
        done.append(check)
        if not check.ok:
            raise FlowgateError(f"the smoke test failed on the new CLIProxyAPI: {check.name} {check.model or ''} "
                                f"answered {check.status or 'nothing'}: {printable(check.detail)}".replace("  ", " "))
    out(f"cliproxy: smoke test on the new instance: {checks.summary(done)} "
        f"({', '.join(m for m, _ in models)})")
    return checks.summary(done)
