"""LiteLLM, the northbound door: its rendered config (the config's own models, then the catalog's
pattern routes; the shared Redis), its auth hook, and how it is launched."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.names import LITELLM
from ..config.view import cliproxy, litellm, redis
from .common import Launch, base_url, file_sha, launcher_argv, launcher_env, sha
from .secrets import CLIPROXY_API_KEY, LITELLM_MASTER_KEY, REDIS_PASSWORD


LITELLM_TEMPLATE = "litellm.yaml.j2"

LITELLM_AUTH_HOOK = "flowgate_auth.py"  # copied as is beside the rendered config (general_settings.custom_auth)


def upstream_id(model: dict) -> str:
    """The id CLIProxyAPI serves for a `via: cliproxy` model."""
    return model["model"] or model["name"]


def protocol(model: dict) -> str:
    """How LiteLLM speaks to CLIProxyAPI for a named model: the config's choice, else as the
    catalog's pattern routes would (tasks.catalog.routes)."""
    from ..catalog.routes import protocol_of

    return model.get("protocol") or protocol_of(upstream_id(model))


def litellm_params(paths: Paths, stack: dict, model: dict, secrets: dict) -> dict:
    params = dict(model["params"])
    if model["via"] == "cliproxy":
        # Each model in its own protocol, so nothing is translated on the way: Claude models through
        # LiteLLM's anthropic provider against the root (it appends /v1/messages and
        # /v1/messages/count_tokens), the others as OpenAI (/v1/chat/completions, /v1/responses).
        if protocol(model) == "anthropic":
            route, api_base = "anthropic", base_url(cliproxy(stack))
        else:
            route, api_base = "openai", base_url(cliproxy(stack)) + "/v1"
        params.update({"model": f"{route}/{upstream_id(model)}", "api_base": api_base,
                       "api_key": secrets[CLIPROXY_API_KEY]})
        return params
    params["model"] = model["model"]
    if model["api_base"]:
        params["api_base"] = model["api_base"]
    if model["api_key_env"]:
        params["api_key"] = f"os.environ/{model['api_key_env']}"  # resolved by LiteLLM at start
    elif model["api_key_file"]:
        params["api_key"] = _read_key_file(paths.user_path(model["api_key_file"]), model["name"])
    return params


def _read_key_file(path, model_name: str) -> str:
    from ..config.keyfiles import read_key_file

    try:
        return read_key_file(path)
    except FlowgateError as exc:
        raise FlowgateError(f"cannot use the key file of model {model_name!r}: {exc.message}",
                            "create the file (one line, the key) or fix models[].api_key_file") from None


def model_entries(paths: Paths, stack: dict, secrets: dict) -> list[dict]:
    """LiteLLM's model_list: the config's own models (matched first, by name), then the pattern
    routes that carry every id CLIProxyAPI serves (tasks.catalog.routes)."""
    entries = [{"name": m["name"], "litellm_params": litellm_params(paths, stack, m, secrets), "model_info": m["model_info"]}
               for m in stack["models"]]
    if cliproxy(stack).enabled:
        from ..catalog.routes import pattern_entries

        entries += pattern_entries(base_url(cliproxy(stack)), secrets[CLIPROXY_API_KEY])
    return entries


def redis_router_settings(paths: Paths, stack: dict, secrets: dict) -> dict:
    """router_settings pointing LiteLLM's router at the shared Redis, so replicas share cooldowns and
    rpm/tpm usage (LiteLLM resolves `os.environ/NAME` at start, as for model keys); {} without one."""
    rd = redis(stack)
    if rd.managed:
        from .redis import redis_port

        return {"redis_host": "127.0.0.1", "redis_port": redis_port(stack), "redis_password": secrets[REDIS_PASSWORD]}
    if not rd.url:
        return {}
    # Host and port, not redis_url: LiteLLM 1.108.14 drops redis_password next to a URL (its client
    # then says HELLO unauthenticated and every shared count fails).
    from urllib.parse import urlsplit

    url = urlsplit(rd.url)
    out = {"redis_host": url.hostname, "redis_port": url.port or 6379}
    if url.scheme == "rediss":
        out["cache_kwargs"] = {"ssl": True}
    if rd.password_env:
        out["redis_password"] = f"os.environ/{rd.password_env}"
    elif rd.password_file:
        from ..config.keyfiles import read_key_file

        try:
            out["redis_password"] = read_key_file(paths.user_path(rd.password_file))
        except FlowgateError as exc:
            raise FlowgateError(f"cannot use redis.password_file: {exc.message}",
                                "create the file (one line, the password) or fix redis.password_file") from None
    return out


def litellm_key_files(paths: Paths, stack: dict) -> list[Path]:
    """Files outside .router/ whose content LiteLLM's rendered config carries (a change re-renders it)."""
    files = [m["api_key_file"] for m in stack["models"] if m.get("api_key_file")]
    files.append(redis(stack).password_file)
    return [paths.user_path(f) for f in files if f]


def litellm_context(paths: Paths, stack: dict, secrets: dict) -> dict:
    return {
        "profile": stack["profile"],
        "models": model_entries(paths, stack, secrets),
        "litellm_settings": stack["litellm_settings"],
        "router_settings": stack["router_settings"],
        "general_settings": stack["general_settings"],
        "master_key": secrets[LITELLM_MASTER_KEY],
    }


def lean_policy(paths: Paths, stack: dict):
    """Which requests the lean path takes under this config (tasks.gateway.leanpolicy), decided from
    the config LiteLLM is rendered with, its secrets left out (`doit status`)."""
    from ..gateway import leanpolicy

    masked = {CLIPROXY_API_KEY: "***"}
    models = []
    for m in stack["models"]:
        if m["via"] == "direct":  # never reads its key file: a direct model is not CLIProxyAPI whatever its key
            params = {**m["params"], "model": m["model"], "api_base": m["api_base"], "api_key": "***"}
        else:
            params = litellm_params(paths, stack, m, masked)
        models.append({"model_name": m["name"], "litellm_params": params, "model_info": m["model_info"]})
    config = {"model_list": models, "litellm_settings": stack["litellm_settings"],
              "router_settings": stack["router_settings"],
              "general_settings": {"master_key": "***", "custom_auth": "flowgate_auth.user_api_key_auth",
                                   **stack["general_settings"]}}
    root = base_url(cliproxy(stack)) if cliproxy(stack).enabled else None
    return leanpolicy.decide(config, root, enabled=litellm(stack).lean_path)


def render_litellm(paths: Paths, stack: dict, secrets: dict) -> str:
    from .render import parse_rendered, render_template  # here: the no-op `doit up` renders nothing

    text = render_template(paths, LITELLM_TEMPLATE, litellm_context(paths, stack, secrets))
    parse_rendered(LITELLM_TEMPLATE, text)
    return text


def render_litellm_local(paths: Paths, stack: dict, secrets: dict) -> str:
    """The config LiteLLM runs with here: pointed at this machine's Redis (an export points elsewhere)."""
    shared = redis_router_settings(paths, stack, secrets)
    local = {**stack, "router_settings": {**stack["router_settings"], **shared}} if shared else stack
    return render_litellm(paths, local, secrets)


# --------------------------------------------------------------------------- launching

# Environment FlowGate sets for LiteLLM unless litellm.env overrides it.
LITELLM_DEFAULT_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline-safe, and seconds faster to boot
    "LITELLM_MODE": "PRODUCTION",  # do not load a stray .env file
}


def litellm_version() -> str:
    """The installed LiteLLM's version, from its dist-info directory's name: importlib.metadata parses
    the METADATA file with the email package (~4 ms on every no-op `doit up`)."""
    for entry in sorted(sys.path, key=lambda e: not e.endswith("-packages")):  # where it is, first
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("litellm-") and name.endswith(".dist-info"):
                return name[len("litellm-"):-len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litellm")
    except PackageNotFoundError:
        raise FlowgateError("litellm is not installed in this environment",
                            "run `uv sync` in the FlowGate checkout") from None


def litellm_launch(paths: Paths, stack: dict, environ=None, instance: str = LITELLM, config: Path | None = None) -> Launch:
    """`instance`: one of names.litellm_instances (litellm.replicas). `config`: another rendered
    config than the usual one, beside it (tasks.stack.swaps.bluegreen points LiteLLM at a passing CLIProxyAPI)."""
    config = config or paths.litellm_config
    from ..gateway.handoff import REPLICAS_ENV
    from ..gateway.reuseport import unsupported

    lite = litellm(stack)
    environ = os.environ if environ is None else environ
    # LiteLLM's ASGI app served by the launcher on a socket it bound with SO_REUSEPORT, so a new
    # instance can take over the address without a gap (tasks.stack.swaps.swap).
    shared = unsupported() is None
    argv = launcher_argv(paths, instance, "worker") + [
        sys.executable, "-m", "tasks.gateway", "--host", lite.host, "--port", str(lite.port),
        "--grace", f"{float(lite.stop_timeout):g}", *(["--shared"] if shared else [])]
    overrides = {**LITELLM_DEFAULT_ENV, **lite.env}
    # LiteLLM's boot is mostly importing it: with PYTHONDONTWRITEBYTECODE set (many container images)
    # nothing of it is ever byte-compiled and every boot takes twice as long. Its first boot leaves
    # the bytecode behind instead (FlowGate's own process keeps the user's setting).
    bytecode = {k: v for k, v in environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env = {**launcher_env(bytecode), **overrides, "CONFIG_FILE_PATH": str(config)}
    from ..config.usagespec import retention_days
    from ..gateway.handoff import KEY_FILE_ENV, LEAN_UPSTREAM_ENV, RETENTION_ENV

    # Where the gateway key lives, for the auth hook's 401 message (derived from paths: not a restart input).
    env[KEY_FILE_ENV] = str(paths.secret(LITELLM_MASTER_KEY))
    # The usage history's retention: the recorder prunes by it (read at start, as the config was before).
    env[RETENTION_ENV] = str(retention_days(stack))

    # The lean path's upstream, set after litellm.env (where the config refuses it) and only when
    # litellm.lean_path allows: the switch is the one way to turn it off.
    env.pop(LEAN_UPSTREAM_ENV, None)
    lean = bool(cliproxy(stack).enabled and lite.lean_path)
    if lean:
        env[LEAN_UPSTREAM_ENV] = base_url(cliproxy(stack))
    from ..gateway.keys.pgstore import ALL_ENV
    from .postgres import store_env

    for name in ALL_ENV:  # the member keys' store (keys.store): only FlowGate says where it is
        env.pop(name, None)
    key_store = store_env(paths, stack)
    env.update(key_store)
    replicas = int(lite.replicas)
    if replicas > 1:  # how a new instance steers connections (litellm_server); not a restart input
        env[REPLICAS_ENV] = str(replicas)
    # Keys LiteLLM reads from the environment at start: a new value needs a restart. Hash only.
    key_vars = sorted({m["api_key_env"] for m in stack["models"] if m["api_key_env"]})
    parts = {
        "config": file_sha(config),
        "auth_hook": file_sha(paths.litellm_auth_hook),
        "host": lite.host,
        "port": lite.port,
        "argv": argv,
        "env": sha(json.dumps(overrides, sort_keys=True)),  # values may be secrets: the record keeps a hash
        "keys": sha(json.dumps({v: environ.get(v, "") for v in key_vars})),
        "version": litellm_version(),
    }
    if key_store:  # a restart input only with PostgreSQL: the records of running stacks stay as they are
        parts["key_store"] = key_store
    if not lite.lean_path:  # a restart input only when off: the records of running stacks stay as they are
        parts["lean_path"] = False
    return Launch(LITELLM, argv, env, paths.litellm_config.parent, lite.host, lite.port, parts,
                  meta={"version": parts["version"], "config_sha": parts["config"], "config_path": str(config), "launcher": True,
                        "shared_port": shared, "run_dir": str(paths.run_dir)})
