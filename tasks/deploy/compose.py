"""A Docker Compose file for the stack, rendered from templates/compose/ (`doit export:compose`).

compose.yaml holds every config inline (`configs: content:`) with each key as `${NAME}`, which
Compose interpolates from `.env` beside it (0600): the only file with a key in it.
"""

from __future__ import annotations

from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..services.render import render_template
from . import cluster
from ..services.postgres import SUPERUSER
from .output import Output, literal_ok, parse_all

COMPOSE_FILE = "compose.yaml"
ENV_FILE = ".env"  # the name `docker compose` reads on its own, from the compose file's directory
AUTHS_VOLUME = "cliproxy-auths"
POSTGRES_VOLUME = "postgres-data"


def escape(text: str) -> str:
    """Compose interpolates `$` everywhere in its file: a literal one is written `$$`."""
    return text.replace("$", "$$")


def interpolate(var: str) -> str:
    return "${" + var + ":?is not set: run `uv run doit export:compose` again}"


def context(plan: cluster.Plan) -> dict:
    lite, cp = plan.litellm, plan.cliproxy
    port, replicas = lite["port"], lite["replicas"]
    secret_env = lambda names: {n: interpolate(n) for n in names}  # noqa: E731
    cliproxy_config = escape(plan.cliproxy_config)
    for var in (cluster.CLIPROXY_API_KEY_VAR, cluster.CLIPROXY_MANAGEMENT_KEY_VAR):
        cliproxy_config = cliproxy_config.replace(cluster.ref(var), interpolate(var))
    return {
        "litellm": {
            "name": cluster.LITELLM_NAME, "image": plan.images["litellm"], "replicas": replicas,
            "args": ["--config", f"{cluster.LITELLM_CONFIG_DIR}/config.yaml", "--host", cluster.BIND_ALL, "--port", str(port)],
            "env": {**{k: escape(v) for k, v in plan.litellm_env.items()}, **secret_env(plan.litellm_secrets)},
            "config_path": f"{cluster.LITELLM_CONFIG_DIR}/config.yaml", "config": escape(plan.litellm_config),
            "publish": f"{port}:{port}" if replicas == 1 else f"{port}-{port + replicas - 1}:{port}",
            "depends_on": [cluster.CLIPROXY_NAME] + ([cluster.REDIS_NAME] if plan.redis == "managed" else [])
            + ([cluster.POSTGRES_NAME] if plan.postgres == "managed" else []),
            "healthcheck": ["CMD", "python3", "-c", "import urllib.request as u; "
                            f"u.urlopen('http://127.0.0.1:{port}/health/readiness', timeout=5)"],
            "start_period": int(lite["start_timeout"]),
        },
        "cliproxy": {
            "name": cluster.CLIPROXY_NAME, "image": plan.images["cliproxy"], "command": cluster.CLIPROXY_COMMAND,
            "env": {**{k: escape(v) for k, v in plan.cliproxy_env.items()}, **secret_env(plan.cliproxy_secrets)},
            "config_path": cluster.CLIPROXY_CONFIG_MOUNT, "config": cliproxy_config,
            # With a token store the volume holds only its local mirror.
            "volume": AUTHS_VOLUME, "auths_volume": f"{AUTHS_VOLUME}:{cluster.CLIPROXY_AUTH_DIR}",
            "healthcheck": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{cp['port']}/"],
        },
        "postgres": plan.postgres == "managed" and {  # the member keys' store, its data in a volume
            "name": cluster.POSTGRES_NAME, "image": plan.images["postgres"], "volume": POSTGRES_VOLUME,
            "env": {"POSTGRES_USER": SUPERUSER, "POSTGRES_PASSWORD": interpolate(cluster.POSTGRES_PASSWORD_VAR)},
            "healthcheck": ["CMD", "pg_isready", "-U", SUPERUSER, "-h", "127.0.0.1"],
        },
        "redis": plan.redis == "managed" and {
            "name": cluster.REDIS_NAME, "image": plan.images["redis"],
            "command": ["redis-server", "--requirepass", interpolate(cluster.REDIS_PASSWORD_VAR),
                        "--save", "", "--appendonly", "no"],
        },
    }


def env_file_values(plan: cluster.Plan) -> dict[str, str]:
    """The env file's values, checked for what its single quotes cannot carry; then passed through
    the template as they are (an env file is not YAML: the YAML serialiser must not touch them)."""
    from ..base.yamlout import Rendered

    values = {var: s.value for var, s in plan.secrets.items()}
    for var, value in values.items():
        if "'" in value or "\n" in value or "\0" in value:
            raise FlowgateError(f"the value of {var} ({plan.secrets[var].source}) holds a quote or a line break, "
                                "which an env file cannot carry", "use a key without them")
    return {var: Rendered(value) for var, value in values.items()}


def render(paths: Paths, stack: dict, environ=None) -> tuple[dict, list[str]]:
    plan = cluster.plan(paths, stack, read_values=True, environ=environ)
    template = "templates/compose/compose.yaml.j2"
    text = render_template(paths, "compose/compose.yaml.j2", context(plan))
    parse_all(text, template)
    literal_ok(text, template, lambda docs: docs[0]["configs"]["litellm_config"]["content"], escape(plan.litellm_config))
    env = render_template(paths, "compose/env.j2", {"values": env_file_values(plan)})
    return {COMPOSE_FILE: (text, 0o644), ENV_FILE: (env, 0o600)}, plan.notes


def export(paths: Paths, stack: dict, out: Path, environ=None) -> Output:
    files, notes = render(paths, stack, environ)
    return Output.write(out, files, notes=notes)
