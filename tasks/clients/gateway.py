"""What a client needs to know about the gateway: where it is, how to get the key, which models."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ..errors import FlowgateError
from ..paths import Paths
from ..secrets import LITELLM_MASTER_KEY
from ..services import base_url

CLIENTS = ("codex", "claude")


@dataclass(frozen=True)
class Gateway:
    root_url: str  # LiteLLM's root: Anthropic clients append /v1/messages themselves
    key_path: Path

    @property
    def openai_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def key_argv(self) -> list[str]:
        """A command that prints the gateway key: clients run it instead of holding a copy."""
        return ["cat", str(self.key_path)]

    @property
    def key_shell_command(self) -> str:
        return shlex.join(self.key_argv)

    def fingerprint(self) -> dict:
        """What client settings depend on: when any of it changes they are stale."""
        return {"url": self.root_url, "key_path": str(self.key_path)}


def gateway(paths: Paths, stack: dict) -> Gateway:
    return Gateway(base_url(stack["litellm"]), paths.secret(LITELLM_MASTER_KEY))


def model_names(stack: dict) -> list[str]:
    return [m["name"] for m in stack["models"]]


def client_models(stack: dict, client: str) -> tuple[str, str]:
    """The client's (model, fast_model) from `clients:`, both checked against the active models."""
    cfg = stack["clients"][client]
    if not cfg["model"]:
        raise FlowgateError(f"clients.{client}.model is not set",
                            f"name one of the models in config/local.yaml: clients: {{{client}: {{model: ...}}}}")
    chosen = (cfg["model"], cfg["fast_model"] or cfg["model"])
    require_models(stack, chosen, f"clients.{client}")
    return chosen


def require_models(stack: dict, names, where: str) -> None:
    known = model_names(stack)
    for name in names:
        if name not in known:
            raise FlowgateError(f"{where} names model {name!r}, which is not in the active model list "
                                f"(profile {stack['profile']}: {', '.join(known)})",
                                "use one of those names, or add the model to `models:` in config/local.yaml")
