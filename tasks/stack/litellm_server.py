"""Where a launcher started before the gateway package finds the gateway when it restarts LiteLLM.

A launcher lives as long as its service: one started by the FlowGate before `tasks/gateway/` holds
in memory the code that imports this module's `serve` at each restart of a crashed LiteLLM. Without
it, such a restart after updating the checkout would fail for good until the next `doit up` (which
starts the new launcher). Remove once no stack can still run that launcher.
"""

from __future__ import annotations

from ..gateway.litellm_server import serve  # noqa: F401  (what those launchers call)
