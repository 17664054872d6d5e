"""What a container deployment of the stack is made of, whatever runs it (Kubernetes or Compose).

The services' configs are rendered by the same functions as on this machine (tasks.services), from
a copy of the stack with the container addresses put in: LiteLLM dials CLIProxyAPI by its service
name, both bind all interfaces, and every key becomes a reference to an environment variable
(`os.environ/NAME`, resolved by LiteLLM at start) whose value travels only in the Secret / env file.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import dataclass, field

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..services import secrets
from ..services.cliproxy import render_cliproxy
from ..services.litellm import LITELLM_DEFAULT_ENV, render_litellm

PART_OF = "flowgate"
LITELLM_NAME = "flowgate-litellm"
CLIPROXY_NAME = "flowgate-cliproxy"  # also the host name LiteLLM dials inside the cluster / project
REDIS_NAME = "flowgate-redis"
POSTGRES_NAME = "flowgate-postgres"  # the member keys' store (keys.store: postgres with postgres.managed)
POSTGRES_PORT = 5432
SECRET_NAME = "flowgate-secrets"
REDIS_PORT = 6379
BIND_ALL = "0.0.0.0"  # inside a container: the pod / container network is the boundary

# Paths inside the containers.
LITELLM_CONFIG_DIR = "/etc/litellm"
CLIPROXY_CONFIG_MOUNT = "/etc/cliproxy/config.yaml"  # read-only (Secret / compose config)
CLIPROXY_RUN_CONFIG = "/var/run/cliproxy/config.yaml"  # the writable copy the binary runs with
CLIPROXY_AUTH_DIR = "/root/.cli-proxy-api"  # the image runs as root; its default auth dir
CLIPROXY_STORE_SPOOL = "/var/lib/cliproxy/store"
CLIPROXY_BINARY = "/CLIProxyAPI/CLIProxyAPI"  # where the official image keeps it
# The binary rewrites its config at start (bcrypt-hashing the management key), which a mounted
# Secret or compose config does not allow: it runs with a copy, as it does on this machine.
CLIPROXY_COMMAND = ["sh", "-c", f"mkdir -p {os.path.dirname(CLIPROXY_RUN_CONFIG)} && "
                    f"cp {CLIPROXY_CONFIG_MOUNT} {CLIPROXY_RUN_CONFIG} && exec {CLIPROXY_BINARY} -config {CLIPROXY_RUN_CONFIG}"]
CLIPROXY_CONFIG_KEY = "cliproxy-config.yaml"  # its key in the Secret

# Environment variable names of the generated secrets inside the containers.
LITELLM_MASTER_KEY_VAR = "LITELLM_MASTER_KEY"
CLIPROXY_API_KEY_VAR = "CLIPROXY_API_KEY"
CLIPROXY_MANAGEMENT_KEY_VAR = "CLIPROXY_MANAGEMENT_KEY"
REDIS_PASSWORD_VAR = "REDIS_PASSWORD"
POSTGRES_PASSWORD_VAR = "POSTGRES_PASSWORD"  # the postgres image's own variable
KEYS_PG_URL_VAR = "FLOWGATE_KEYS_PG_URL"  # the gateway's URL of the key store (tasks.gateway.keys.pgstore)
_STORE_VARS = {  # store key -> CLIProxyAPI's variable (tasks.teamspec.STORE)
    "dsn": "PGSTORE_DSN", "schema": "PGSTORE_SCHEMA",
    "endpoint": "OBJECTSTORE_ENDPOINT", "bucket": "OBJECTSTORE_BUCKET",
    "access_key": "OBJECTSTORE_ACCESS_KEY", "secret_key": "OBJECTSTORE_SECRET_KEY",
}
_SPOOL_VAR = {"postgres": "PGSTORE_LOCAL_PATH", "object": "OBJECTSTORE_LOCAL_PATH"}


@dataclass
class Secret:
    """One value the containers need and only the Secret / env file holds, and where it comes from."""

    var: str
    source: str  # for messages: "the generated litellm_master_key", "$OPENAI_API_KEY", "file x"
    value: str | None = None  # None when an existing Secret holds it (not read at all)


@dataclass
class Plan:
    stack: dict
    litellm_config: str  # keys as os.environ/ references: fit for a ConfigMap
    cliproxy_config: str  # keys as ref(VAR) tokens: no value (compose interpolates them; checksums)
    cliproxy_config_values: str | None  # with the keys in it: for the Secret only (None: not read)
    litellm_env: dict[str, str]  # plain environment: FlowGate's defaults only (litellm.env goes in the Secret)
    litellm_secrets: list[str]  # variables LiteLLM takes from the Secret
    cliproxy_env: dict[str, str]
    cliproxy_secrets: list[str]
    secrets: dict[str, Secret] = field(default_factory=dict)  # var -> Secret, every one the stack needs
    redis: str | None = None  # "managed" (run in the deployment), "external" (redis.url), None
    postgres: str | None = None  # the member keys' store: "managed" (run in the deployment), "external", None (SQLite)
    notes: list[str] = field(default_factory=list)  # worth saying, not worth failing for

    @property
    def litellm(self) -> dict:
        return self.stack["litellm"]

    @property
    def cliproxy(self) -> dict:
        return self.stack["cliproxy"]

    @property
    def images(self) -> dict:
        return self.stack["deploy"]["images"]

    @property
    def store(self) -> str | None:
        return self.cliproxy["store"]["type"]


def ref(var: str) -> str:
    """A stand-in for a secret in a rendered config: a plain YAML word, replaced by the Compose
    export with its own `${VAR}` interpolation."""
    return f"FLOWGATE_REF_{var}"


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def key_var(model_name: str) -> str:
    """The variable that carries a key-file model's key (its file stays on this machine)."""
    return "FLOWGATE_KEY_" + re.sub(r"[^A-Z0-9]+", "_", model_name.upper()).strip("_")


def plan(paths: Paths, stack: dict, read_values: bool = True, environ=None) -> Plan:
    """The deployment of `stack`. With `read_values` false (an existing Secret) no key is read."""
    environ = os.environ if environ is None else environ
    stack = copy.deepcopy(stack)
    found: dict[str, Secret] = {}

    def need(var: str, source: str, read) -> str:
        if var in found and found[var].source != source:
            raise FlowgateError(f"{source} and {found[var].source} both need the container variable {var}",
                                "rename one of them (api_key_env names share the containers' environment)")
        found[var] = Secret(var, source, read() if read_values else None)
        return var

    generated = lambda name: lambda: secrets.read(paths, name)  # noqa: E731
    need(LITELLM_MASTER_KEY_VAR, "the generated litellm_master_key", generated(secrets.LITELLM_MASTER_KEY))
    need(CLIPROXY_API_KEY_VAR, "the generated cliproxy_api_key", generated(secrets.CLIPROXY_API_KEY))
    need(CLIPROXY_MANAGEMENT_KEY_VAR, "the generated cliproxy_management_key", generated(secrets.CLIPROXY_MANAGEMENT_KEY))
    litellm_secrets = [LITELLM_MASTER_KEY_VAR, CLIPROXY_API_KEY_VAR]

    for model in stack["models"]:
        if model["api_key_env"]:
            litellm_secrets.append(need(model["api_key_env"], f"${model['api_key_env']}",
                                        _from_env(environ, model["api_key_env"], f"models: {model['name']}")))
        elif model["api_key_file"]:
            path = paths.user_path(model["api_key_file"])
            model["api_key_env"], model["api_key_file"] = key_var(model["name"]), None
            litellm_secrets.append(need(model["api_key_env"], f"file {path}", _from_file(path, f"models: {model['name']}")))

    # litellm.env values may be secrets (the README says so): they travel in the Secret / env file too
    for name, value in stack["litellm"]["env"].items():
        litellm_secrets.append(need(name, f"litellm.env.{name}", lambda value=value: value))

    redis_mode = _redis(stack, paths, environ, need, litellm_secrets)
    litellm_env = {k: v for k, v in LITELLM_DEFAULT_ENV.items() if k not in stack["litellm"]["env"]}
    postgres_mode = _postgres(stack, paths, environ, need, litellm_secrets, litellm_env)
    cliproxy_env, cliproxy_secrets = _store(stack, paths, environ, need)

    # LiteLLM dials CLIProxyAPI by its service name; the refs keep every key out of its config.
    stack["cliproxy"] = {**stack["cliproxy"], "host": CLIPROXY_NAME}
    litellm_config = render_litellm(paths, stack, {
        secrets.LITELLM_MASTER_KEY: f"os.environ/{LITELLM_MASTER_KEY_VAR}",
        secrets.CLIPROXY_API_KEY: f"os.environ/{CLIPROXY_API_KEY_VAR}",
        secrets.CLIPROXY_MANAGEMENT_KEY: "unused"})
    bound = {**stack, "cliproxy": {**stack["cliproxy"], "host": BIND_ALL}}

    def cliproxy_config(api_key: str, management_key: str) -> str:
        return render_cliproxy(paths, bound, {secrets.CLIPROXY_API_KEY: api_key, secrets.CLIPROXY_MANAGEMENT_KEY: management_key},
                               auth_dir=CLIPROXY_AUTH_DIR)

    with_values = None
    if read_values:
        with_values = cliproxy_config(found[CLIPROXY_API_KEY_VAR].value, found[CLIPROXY_MANAGEMENT_KEY_VAR].value)
    return Plan(stack, litellm_config, cliproxy_config(ref(CLIPROXY_API_KEY_VAR), ref(CLIPROXY_MANAGEMENT_KEY_VAR)),
                with_values, litellm_env=litellm_env,
                litellm_secrets=litellm_secrets, cliproxy_env=cliproxy_env, cliproxy_secrets=cliproxy_secrets,
                secrets=found, redis=redis_mode, postgres=postgres_mode, notes=_notes(stack, redis_mode, postgres_mode))


def _notes(stack: dict, redis_mode: str | None, postgres_mode: str | None = None) -> list[str]:
    from ..release.lines import MAINLINE_REPO
    from ..config.teamspec import CLIPROXY_IMAGE

    notes = []
    if stack["litellm"]["replicas"] > 1 and not redis_mode:
        notes.append(f"{stack['litellm']['replicas']} LiteLLM replicas without Redis: each keeps its own cooldowns "
                     "and rpm/tpm counts (set redis.managed: true or redis.url to share them)")
    if postgres_mode:
        notes.append("keys.store is postgres: the export carries the key store and tells the gateway where it is "
                     f"({KEYS_PG_URL_VAR}); member keys are checked by FlowGate's gateway, which the LiteLLM image "
                     "does not run (docs/team.md)")
    if stack["cliproxy"]["release"]["repo"] != MAINLINE_REPO and stack["deploy"]["images"]["cliproxy"] == CLIPROXY_IMAGE:
        notes.append(f"cliproxy.release.repo is {stack['cliproxy']['release']['repo']}, but the containers run the "
                     f"mainline image {CLIPROXY_IMAGE}: set deploy.images.cliproxy to an image of that line")
    return notes


def _redis(stack: dict, paths: Paths, environ, need, litellm_secrets: list[str]) -> str | None:
    """Point LiteLLM's router at the deployment's Redis: cooldowns and rpm/tpm shared by all replicas."""
    redis = stack["redis"]
    settings = stack["router_settings"]
    if redis["managed"]:
        need(REDIS_PASSWORD_VAR, "the generated redis_password", lambda: secrets.read(paths, secrets.REDIS_PASSWORD))
        settings.update(redis_host=REDIS_NAME, redis_port=REDIS_PORT, redis_password=f"os.environ/{REDIS_PASSWORD_VAR}")
        litellm_secrets.append(REDIS_PASSWORD_VAR)
        return "managed"
    if not redis["url"]:
        return None
    settings["redis_url"] = redis["url"]
    if redis["password_env"]:
        need(REDIS_PASSWORD_VAR, f"${redis['password_env']}", _from_env(environ, redis["password_env"], "redis.password_env"))
    elif redis["password_file"]:
        path = paths.user_path(redis["password_file"])
        need(REDIS_PASSWORD_VAR, f"file {path}", _from_file(path, "redis.password_file"))
    if redis["password_env"] or redis["password_file"]:
        settings["redis_password"] = f"os.environ/{REDIS_PASSWORD_VAR}"
        litellm_secrets.append(REDIS_PASSWORD_VAR)
    return "external"


def _postgres(stack: dict, paths: Paths, environ, need, litellm_secrets: list[str], litellm_env: dict) -> str | None:
    """Point the gateway at the member keys' PostgreSQL (keys.store: postgres): its URL travels in the
    Secret (FLOWGATE_KEYS_PG_URL), the gateway is told the variable's name."""
    from ..config.view import key_store
    from ..gateway.keys import pgstore
    from ..services.postgres import DATABASE, SUPERUSER

    pg = stack["postgres"]
    if key_store(stack) != "postgres":
        return None
    if pg["managed"]:
        password = lambda: secrets.read(paths, secrets.POSTGRES_PASSWORD)  # noqa: E731  (URL-safe: token_urlsafe)
        need(POSTGRES_PASSWORD_VAR, "the generated postgres_password", password)
        need(KEYS_PG_URL_VAR, "the managed PostgreSQL's URL (with the generated postgres_password)",
             lambda: f"postgresql://{SUPERUSER}:{password()}@{POSTGRES_NAME}:{POSTGRES_PORT}/{DATABASE}")
    elif pg["url_env"]:
        need(KEYS_PG_URL_VAR, f"${pg['url_env']}", _from_env(environ, pg["url_env"], "postgres.url_env"))
    else:
        path = paths.user_path(pg["url_file"])
        need(KEYS_PG_URL_VAR, f"file {path}", _from_file(path, "postgres.url_file"))
    litellm_secrets.append(KEYS_PG_URL_VAR)
    litellm_env.update({pgstore.STORE_ENV: "postgres", pgstore.URL_ENV_ENV: KEYS_PG_URL_VAR})
    return "managed" if pg["managed"] else "external"


def _store(stack: dict, paths: Paths, environ, need) -> tuple[dict[str, str], list[str]]:
    """CLIProxyAPI's token store variables: plain ones, and the names of those the Secret carries."""
    store = stack["cliproxy"]["store"]
    if not store["type"]:
        return {}, []
    plain, from_secret = {_SPOOL_VAR[store["type"]]: CLIPROXY_STORE_SPOOL}, []
    for key, var in _STORE_VARS.items():
        where = f"cliproxy.store.{key}"
        if store.get(f"{key}_env"):
            from_secret.append(need(var, f"${store[f'{key}_env']}", _from_env(environ, store[f"{key}_env"], where + "_env")))
        elif store.get(f"{key}_file"):
            path = paths.user_path(store[f"{key}_file"])
            from_secret.append(need(var, f"file {path}", _from_file(path, where + "_file")))
        elif store.get(key):
            plain[var] = store[key]
    return plain, from_secret


def _from_env(environ, name: str, where: str):
    def read() -> str:
        value = environ.get(name)
        if not value:
            raise FlowgateError(f"{where}: environment variable {name} is not set; the export copies its value "
                                "into the Secret", "export it, or use --existing-secret NAME (Kubernetes)")
        return value
    return read


def _from_file(path, where: str):
    def read() -> str:
        from ..config.keyfiles import read_key_file  # the one rule for a key file: regular, small, one line, ours

        try:
            return read_key_file(path)
        except FlowgateError as exc:
            raise FlowgateError(f"{where}: {exc.message}",
                                "make it a file of yours holding one line, or use --existing-secret NAME "
                                "(Kubernetes)") from None
    return read
