"""What a service is launched with (`launch_for`), and what starting it did (`Outcome`): shared by
lifecycle (start, restart, stop) and swap (LiteLLM's zero-downtime replacement)."""

from __future__ import annotations

from collections import namedtuple

from ...base.paths import Paths
from ...config.names import LITELLM, POSTGRES, REDIS, service_of
from ...services.cliproxy import cliproxy_launch
from ...services.common import Launch
from ...services.litellm import litellm_launch

LOG_TAIL_LINES = 15


class Outcome(namedtuple("Outcome", "service action pid why instances", defaults=(None, "", ()))):
    """action: started | restarted | swapped | switched (CLIProxyAPI, tasks.stack.swaps.bluegreen) | reloaded | unchanged | disabled; instances: one
    Outcome per replica when there are several."""

    __slots__ = ()

    def line(self) -> str:
        if self.instances:
            return "\n".join(o.line() for o in self.instances)
        text = f"{self.service}: {self.action}"
        if self.pid:
            text += f" (pid {self.pid})"
        return text + (f": {self.why}" if self.why else "")


def launch_for(paths: Paths, stack: dict, service: str, config=None) -> Launch:
    """`service`: a service, or one of its instances (names.litellm_instances, bluegreen.BRIDGE);
    `config`: the file it runs with, when not the usual one."""
    if service_of(service) == LITELLM:
        return litellm_launch(paths, stack, instance=service, config=config)
    if service == REDIS:
        from ...config.view import redis
        from ...services.redis import redis_launch

        return redis_launch(paths, redis(stack))
    if service == POSTGRES:
        from ...config.view import postgres
        from ...services.postgres import postgres_launch

        return postgres_launch(paths, postgres(stack))
    from ...release import locate_binary, settings_from_stack

    binary = locate_binary(paths, settings_from_stack(stack))
    return cliproxy_launch(paths, stack, binary.path, binary.identity, line=binary.line.name if binary.line else None,
                           service=service, config=config)
