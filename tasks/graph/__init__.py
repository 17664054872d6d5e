"""doit task creators: the thin layer between doit and FlowGate's plain-Python core.

dodo.py imports DOIT_CONFIG and the task_* functions from here. Heavy imports (yaml, jinja2,
httpx, psutil, litellm) happen inside actions only.
"""

from .binary import task_fetch
from .build import task_check, task_config, task_render, task_secrets
from .clients import task_integrate, task_models, task_smoke
from .common import DOIT_CONFIG
from .stack import (task_doctor, task_down, task_logs, task_preflight, task_ready, task_restart, task_start, task_status,
                    task_up)

__all__ = ["DOIT_CONFIG", "task_check", "task_config", "task_doctor", "task_down", "task_fetch", "task_integrate",
           "task_logs", "task_models", "task_preflight", "task_ready", "task_render", "task_restart", "task_secrets",
           "task_smoke", "task_start", "task_status", "task_up"]
