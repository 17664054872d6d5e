"""Kubernetes manifests for the stack, rendered from templates/k8s/ (`doit export:k8s`).

One file per service plus the Secret. Only secret.yaml (0600) holds keys; with an existing Secret
it is not written at all (and a stale one is removed), and nothing reads a key.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..services.render import render_template
from . import cluster
from ..services.postgres import SUPERUSER
from .output import Output, literal_ok, parse_all

TEMPLATES = ("litellm", "cliproxy", "redis", "postgres", "secret")  # templates/k8s/<name>.yaml.j2 -> <name>.yaml
SECRET_FILE = "secret.yaml"


def _labels(component: str) -> tuple[dict, dict]:
    selector = {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": cluster.PART_OF}
    return {**selector, "app.kubernetes.io/part-of": cluster.PART_OF, "app.kubernetes.io/managed-by": "flowgate"}, selector


def _component(name: str, component: str, **values) -> dict:
    labels, selector = _labels(component)
    return {"name": name, "labels": labels, "selector": selector, **values}


def context(plan: cluster.Plan, secret_name: str) -> dict:
    lite, cp = plan.litellm, plan.cliproxy
    return {
        "secret_name": secret_name,
        "labels": _labels("flowgate")[0],
        "litellm": _component(
            cluster.LITELLM_NAME, "litellm",
            replicas=lite["replicas"], port=lite["port"], image=plan.images["litellm"],
            args=["--config", f"{cluster.LITELLM_CONFIG_DIR}/config.yaml", "--host", cluster.BIND_ALL,
                  "--port", str(lite["port"])],
            config=plan.litellm_config, checksum=cluster.checksum(plan.litellm_config),
            config_dir=cluster.LITELLM_CONFIG_DIR, env=plan.litellm_env, secret_env=plan.litellm_secrets,
            startup_failures=max(3, math.ceil(lite["start_timeout"] / 5))),
        "cliproxy": _component(
            cluster.CLIPROXY_NAME, "cliproxy",
            port=cp["port"], image=plan.images["cliproxy"], command=cluster.CLIPROXY_COMMAND,
            checksum=cluster.checksum(plan.cliproxy_config), env=plan.cliproxy_env, secret_env=plan.cliproxy_secrets,
            store=plan.store, spool=cluster.CLIPROXY_STORE_SPOOL, auth_dir=cluster.CLIPROXY_AUTH_DIR,
            config_mount_dir=str(Path(cluster.CLIPROXY_CONFIG_MOUNT).parent),
            run_dir=str(Path(cluster.CLIPROXY_RUN_CONFIG).parent), config_key=cluster.CLIPROXY_CONFIG_KEY),
        "redis": _component(cluster.REDIS_NAME, "redis", port=cluster.REDIS_PORT, image=plan.images["redis"]),
        "postgres": _component(cluster.POSTGRES_NAME, "postgres", port=cluster.POSTGRES_PORT, image=plan.images["postgres"],
                               user=SUPERUSER, password_var=cluster.POSTGRES_PASSWORD_VAR),
    }


def render(paths: Paths, stack: dict, existing_secret: str | None = None, environ=None) -> tuple[dict, list[str]]:
    """file name -> (text, mode) of every manifest this export consists of, and the plan's notes."""
    _check_name(existing_secret)
    plan = cluster.plan(paths, stack, read_values=existing_secret is None, environ=environ)
    ctx = context(plan, existing_secret or cluster.SECRET_NAME)
    files = {}
    for name in TEMPLATES:
        if ((name == "redis" and plan.redis != "managed") or (name == "postgres" and plan.postgres != "managed")
                or (name == "secret" and existing_secret)):
            continue
        extra = {}
        if name == "secret":
            extra = {"values": {var: s.value for var, s in plan.secrets.items()},
                     "config_key": cluster.CLIPROXY_CONFIG_KEY, "cliproxy_config": plan.cliproxy_config_values}
        text = render_template(paths, f"k8s/{name}.yaml.j2", {**ctx, **extra})
        parse_all(text, f"templates/k8s/{name}.yaml.j2")
        files[f"{name}.yaml"] = (text, 0o600 if name == "secret" else 0o644)
    literal_ok(files["litellm.yaml"][0], "templates/k8s/litellm.yaml.j2",
               lambda docs: docs[0]["data"]["config.yaml"], plan.litellm_config)
    if SECRET_FILE in files:
        literal_ok(files[SECRET_FILE][0], "templates/k8s/secret.yaml.j2",
                   lambda docs: docs[0]["stringData"][cluster.CLIPROXY_CONFIG_KEY], plan.cliproxy_config_values)
    return files, plan.notes


def _check_name(name: str | None) -> None:
    import re

    if name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
        raise FlowgateError(f"--existing-secret {name!r} is not a Kubernetes object name",
                            "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit")


def export(paths: Paths, stack: dict, out: Path, existing_secret: str | None = None, environ=None) -> Output:
    files, notes = render(paths, stack, existing_secret, environ)
    # A file an earlier export wrote that this one does not (redis.yaml, postgres.yaml, secret.yaml) would still be
    # applied by `kubectl apply -f DIR`, and a stale secret.yaml keeps keys on disk: remove them.
    return Output.write(out, files, stale=[f"{name}.yaml" for name in TEMPLATES], notes=notes)
