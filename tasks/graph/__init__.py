"""doit task creators: the thin layer between doit and FlowGate's plain-Python core.

One module per command family: build (config, secrets, render, check), fetch, run (start,
preflight, ready, up, down, restart), inspect (status, logs, doctor), deploy (export). dodo.py
imports DOIT_CONFIG and the task_* functions from here. Heavy imports (yaml, jinja2, httpx, psutil, litellm) happen
inside actions only. Nothing outside this package imports doit.
"""

from .accounts import task_accounts, task_import, task_login
from .build import task_check, task_config, task_init, task_render, task_secrets
from .clients import task_integrate, task_models, task_smoke
from .common import DOIT_CONFIG, cheap_to_inspect
from .deploy import task_export
from .fetch import task_fetch
from .inspect import task_doctor, task_logs, task_status
from .profile import task_profile
from .usage import install as _install_usage
from .run import (
           task_down,
           task_preflight,
           task_ready,
           task_restart,
           task_start,
           task_up,
)

_install_usage()

__all__ = ["DOIT_CONFIG", "task_accounts", "task_check", "task_config", "task_doctor", "task_down", "task_export",
           "task_fetch", "task_import", "task_init", "task_integrate", "task_login", "task_logs", "task_models",
           "task_preflight", "task_profile", "task_ready",
           "task_render", "task_restart", "task_secrets", "task_smoke", "task_start", "task_status", "task_up"]

for _name in __all__[1:]:  # every task creator: see cheap_to_inspect
    globals()[_name] = cheap_to_inspect(globals()[_name])
del _name
