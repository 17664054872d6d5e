"""The two services' specifics: what their configs hold, how they are reached.

Plain data in, plain data out; the templates decide the files' shape (tasks.render).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import namedtuple
from pathlib import Path

from .errors import FlowgateError
from .names import CLIPROXY, LITELLM, SERVICES  # noqa: F401  (re-exported for the service specifics)
from .paths import ROOT, Paths
from .stack.probe import probe_path
from .secrets import CLIPROXY_API_KEY, CLIPROXY_MANAGEMENT_KEY, LITELLM_MASTER_KEY, REDIS_PASSWORD

LITELLM_TEMPLATE = "litellm.yaml.j2"
LITELLM_AUTH_HOOK = "flowgate_auth.py"  # copied as is beside the rendered config (general_settings.custom_auth)
CLIPROXY_TEMPLATE = "cliproxy.yaml.j2"


def connect_host(host: str) -> str:
    """Where a local client connects for a service bound to `host` (URL form)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def base_url(service_cfg: dict) -> str:
    return f"http://{connect_host(service_cfg['host'])}:{service_cfg['port']}"


def render_inputs(stack: dict, service: str) -> dict:
    """The part of the stack config a service's rendered file depends on.

    The config task writes each slice to its own file, so an edit that concerns one service
    leaves the other's render task up to date.
    """
    cp = stack["cliproxy"]
    if service == CLIPROXY:
        return {k: cp[k] for k in ("enabled", "host", "port", "allow_remote", "settings")}
    return {
        "profile": stack["profile"],
        "models": stack["models"],
        "litellm_settings": stack["litellm_settings"],
        "router_settings": stack["router_settings"],
        "general_settings": stack["general_settings"],
        "cliproxy": {"host": cp["host"], "port": cp["port"]},
        "redis": stack.get("redis"),
    }


def upstream_id(model: dict) -> str:
    """The id CLIProxyAPIPlus serves for a `via: cliproxy` model."""
    return model["model"] or model["name"]


def protocol(model: dict) -> str:
    """How LiteLLM speaks to CLIProxyAPIPlus for this model: the config's choice, else by family."""
    return model.get("protocol") or ("anthropic" if upstream_id(model).startswith("claude") else "openai")


def dated_alias(model: dict) -> str | None:
    """The route that serves Claude Code's dated ids (claude-haiku-4-5-20251001) with this model.

    `-20*` rather than `-*`: a dated snapshot, never a sibling family (claude-sonnet-4-* would also
    catch claude-sonnet-4-5).
    """
    if model["via"] == "cliproxy" and protocol(model) == "anthropic":
        return f"{upstream_id(model)}-20*"
    return None


def litellm_params(paths: Paths, stack: dict, model: dict, secrets: dict) -> dict:
    params = dict(model["params"])
    if model["via"] == "cliproxy":
        # Each model in its own protocol, so nothing is translated on the way: Claude models through
        # LiteLLM's anthropic provider against the root (it appends /v1/messages and
        # /v1/messages/count_tokens), the others as OpenAI (/v1/chat/completions, /v1/responses).
        if protocol(model) == "anthropic":
            route, api_base = "anthropic", base_url(stack["cliproxy"])
        else:
            route, api_base = "openai", base_url(stack["cliproxy"]) + "/v1"
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
    from .keyfiles import read_key_file

    try:
        return read_key_file(path)
    except FlowgateError as exc:
        raise FlowgateError(f"cannot use the key file of model {model_name!r}: {exc.message}",
                            "create the file (one line, the key) or fix models[].api_key_file") from None


def model_entries(paths: Paths, stack: dict, secrets: dict) -> list[dict]:
    """LiteLLM's model_list: every configured model, then the dated-id routes (exact names win)."""
    entries, aliases = [], []
    for m in stack["models"]:
        entry = {"name": m["name"], "litellm_params": litellm_params(paths, stack, m, secrets), "model_info": m["model_info"]}
        entries.append(entry)
        alias = dated_alias(m)
        if alias and alias not in {a["name"] for a in aliases}:
            aliases.append({**entry, "name": alias})
    return entries + aliases


def redis_router_settings(paths: Paths, stack: dict, secrets: dict) -> dict:
    """router_settings pointing LiteLLM's router at the shared Redis, so replicas share cooldowns and
    rpm/tpm usage (LiteLLM resolves `os.environ/NAME` at start, as for model keys); {} without one."""
    redis = stack.get("redis") or {}
    if redis.get("managed"):
        from .redis_service import redis_port

        return {"redis_host": "127.0.0.1", "redis_port": redis_port(stack), "redis_password": secrets[REDIS_PASSWORD]}
    if not redis.get("url"):
        return {}
    # Host and port, not redis_url: LiteLLM 1.108.7 drops redis_password next to a URL (its client
    # then says HELLO unauthenticated and every shared count fails).
    from urllib.parse import urlsplit

    url = urlsplit(redis["url"])
    out = {"redis_host": url.hostname, "redis_port": url.port or 6379}
    if url.scheme == "rediss":
        out["cache_kwargs"] = {"ssl": True}
    if redis["password_env"]:
        out["redis_password"] = f"os.environ/{redis['password_env']}"
    elif redis["password_file"]:
        from .keyfiles import read_key_file

        try:
            out["redis_password"] = read_key_file(paths.user_path(redis["password_file"]))
        except FlowgateError as exc:
            raise FlowgateError(f"cannot use redis.password_file: {exc.message}",
                                "create the file (one line, the password) or fix redis.password_file") from None
    return out


def litellm_key_files(paths: Paths, stack: dict) -> list[Path]:
    """Files outside .router/ whose content LiteLLM's rendered config carries (a change re-renders it)."""
    files = [m["api_key_file"] for m in stack["models"] if m.get("api_key_file")]
    files.append((stack.get("redis") or {}).get("password_file"))
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


def cliproxy_context(paths: Paths, stack: dict, secrets: dict, auth_dir: str | None = None) -> dict:
    cfg = stack["cliproxy"]
    return {
        "host": cfg["host"],
        "port": cfg["port"],
        "auth_dir": auth_dir or str(paths.auths_dir),  # another one inside a container
        "api_key": secrets[CLIPROXY_API_KEY],
        "management_key": secrets[CLIPROXY_MANAGEMENT_KEY],
        "allow_remote": cfg["allow_remote"],
        "settings": cfg["settings"],
    }


def render_litellm(paths: Paths, stack: dict, secrets: dict) -> str:
    from .render import parse_rendered, render_template  # here: the no-op `doit up` renders nothing

    text = render_template(paths, LITELLM_TEMPLATE, litellm_context(paths, stack, secrets))
    parse_rendered(LITELLM_TEMPLATE, text)
    return text


def render_litellm_local(paths: Paths, stack: dict, secrets: dict) -> str:
    """The config LiteLLM runs with here: pointed at this machine's Redis (an export points elsewhere)."""
    redis = redis_router_settings(paths, stack, secrets)
    local = {**stack, "router_settings": {**stack["router_settings"], **redis}} if redis else stack
    return render_litellm(paths, local, secrets)


def render_cliproxy(paths: Paths, stack: dict, secrets: dict, auth_dir: str | None = None) -> str:
    from .render import parse_rendered, render_template

    text = render_template(paths, CLIPROXY_TEMPLATE, cliproxy_context(paths, stack, secrets, auth_dir))
    parse_rendered(CLIPROXY_TEMPLATE, text)
    return text


# --------------------------------------------------------------------------- launching

# Environment FlowGate sets for LiteLLM unless litellm.env overrides it.
LITELLM_DEFAULT_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline-safe, and seconds faster to boot
    "LITELLM_MODE": "PRODUCTION",  # do not load a stray .env file
}


class Launch(namedtuple("Launch", "service argv env cwd host port parts meta")):
    """How to run one service, and the fingerprint of everything that needs a restart to change.

    parts  the named restart inputs, e.g. {"config": sha, "version": "1.108.7"}
    meta   extra record data that does not force a restart
    """

    __slots__ = ()

    @property
    def inputs_hash(self) -> str:
        return _sha(json.dumps(self.parts, sort_keys=True))


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except OSError:
        return None


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


def launcher_argv(paths: Paths, service: str, ready: str) -> list[str]:
    """The supervising launcher (tasks.stack.launcher): it restarts the service if it crashes."""
    return [sys.executable, "-m", "tasks.stack.launcher", "supervise", "--home", str(paths.home),
            "--service", service, "--ready", ready, "--"]


def launcher_env(environ) -> dict[str, str]:
    """The launcher is `python -m tasks.stack.launcher`: the checkout must be importable."""
    path = environ.get("PYTHONPATH")
    return {**environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def litellm_launch(paths: Paths, stack: dict, environ=None, instance: str = LITELLM) -> Launch:
    """`instance`: one of names.litellm_instances (litellm.replicas)."""
    from .stack.launcher_files import REPLICAS_ENV
    from .stack.reuseport import unsupported

    cfg = stack["litellm"]
    environ = os.environ if environ is None else environ
    # LiteLLM's ASGI app served by the launcher on a socket it bound with SO_REUSEPORT, so a new
    # instance can take over the address without a gap (tasks.stack.swap).
    shared = unsupported() is None
    argv = launcher_argv(paths, instance, "worker") + [
        sys.executable, "-m", "tasks.stack.launcher", "litellm", "--host", cfg["host"], "--port", str(cfg["port"]),
        "--grace", f"{float(cfg['stop_timeout']):g}", *(["--shared"] if shared else [])]
    overrides = {**LITELLM_DEFAULT_ENV, **cfg["env"]}
    # LiteLLM's boot is mostly importing it: with PYTHONDONTWRITEBYTECODE set (many container images)
    # nothing of it is ever byte-compiled and every boot takes twice as long. Its first boot leaves
    # the bytecode behind instead (FlowGate's own process keeps the user's setting).
    bytecode = {k: v for k, v in environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env = {**launcher_env(bytecode), **overrides, "CONFIG_FILE_PATH": str(paths.litellm_config)}
    # Where the gateway key lives, for the auth hook's 401 message (derived from paths: not a restart input).
    env["FLOWGATE_GATEWAY_KEY_FILE"] = str(paths.secret(LITELLM_MASTER_KEY))
    if stack["cliproxy"]["enabled"]:  # the lean path's upstream (derived from the config: not a restart input)
        from .stack.launcher_files import LEAN_UPSTREAM_ENV

        env[LEAN_UPSTREAM_ENV] = base_url(stack["cliproxy"])
    replicas = int(cfg.get("replicas", 1))
    if replicas > 1:  # how a new instance steers connections (litellm_server); not a restart input
        env[REPLICAS_ENV] = str(replicas)
    # Keys LiteLLM reads from the environment at start: a new value needs a restart. Hash only.
    key_vars = sorted({m["api_key_env"] for m in stack["models"] if m["api_key_env"]})
    parts = {
        "config": file_sha(paths.litellm_config),
        "auth_hook": file_sha(paths.litellm_auth_hook),
        "host": cfg["host"],
        "port": cfg["port"],
        "argv": argv,
        "env": _sha(json.dumps(overrides, sort_keys=True)),  # values may be secrets: the record keeps a hash
        "keys": _sha(json.dumps({v: environ.get(v, "") for v in key_vars})),
        "version": litellm_version(),
    }
    return Launch(LITELLM, argv, env, paths.litellm_config.parent, cfg["host"], cfg["port"], parts,
                  meta={"version": parts["version"], "config_sha": parts["config"], "launcher": True,
                        "shared_port": shared, "run_dir": str(paths.run_dir)})


def cliproxy_launch(paths: Paths, stack: dict, binary: Path, binary_id: str, environ=None,
                    line: str | None = None) -> Launch:
    cfg = stack["cliproxy"]
    environ = os.environ if environ is None else environ
    probe = base_url(cfg) + probe_path(CLIPROXY, {"line": line})
    argv = launcher_argv(paths, CLIPROXY, probe) + [str(binary), "-config", str(paths.cliproxy_config)]
    # MANAGEMENT_PASSWORD would force remote management on: never pass it through.
    env = {k: v for k, v in launcher_env(environ).items() if k != "MANAGEMENT_PASSWORD"}
    # Only these need a restart; everything else in its config reaches it by hot reload.
    parts = {"binary": binary_id, "host": cfg["host"], "port": cfg["port"], "argv": argv}
    return Launch(CLIPROXY, argv, env, paths.cliproxy_config.parent, cfg["host"], cfg["port"], parts,
                  meta={"rendered_sha": file_sha(paths.cliproxy_rendered), "line": line, "launcher": True})


def restart_reasons(old: dict, new: dict) -> list[str]:
    """Which named restart inputs differ, in words."""
    words = {"config": "config changed", "auth_hook": "FlowGate's auth hook changed", "argv": "command line changed", "env": "environment changed",
             "keys": "upstream key variables changed", "version": "litellm version changed",
             "binary": "binary changed", "host": "host changed", "port": "port changed"}
    changed = [k for k in new if old.get(k) != new[k]]
    if "argv" in changed and {"binary", "host", "port"} & set(changed):
        changed.remove("argv")  # the command line names the binary, host and port: say which, once
    return [words.get(k, f"{k} changed") for k in changed] or ["inputs changed"]
