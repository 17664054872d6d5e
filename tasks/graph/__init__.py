"""doit task creators: the thin layer between doit and FlowGate's plain-Python core.

One module per command family: build (config, secrets, render, check), fetch, outdated, run (start,
preflight, ready, up, down, restart), inspect (status, logs, doctor), accounts, clients, profile, keys,
deploy (export), history (usage, dashboard), upgrade (upgrade, rollback); early asks the services its command will ask, while
the rest loads. dodo.py imports DOIT_CONFIG and task_flowgate (every creator as one: see
common.one_creator) from here.
Heavy imports (yaml, jinja2, httpx, psutil, litellm) happen inside actions only. Nothing outside
this package imports doit.
"""

from .common import DOIT_CONFIG, one_creator
from .early import ask_early

ask_early()  # first: the services answer while the rest of dodo.py loads (tasks.graph.early)

from .accounts import task_accounts, task_import, task_login  # noqa: E402
from .build import task_check, task_config, task_init, task_render, task_secrets  # noqa: E402
from .clients import task_integrate, task_models, task_smoke  # noqa: E402
from .deploy import task_export  # noqa: E402
from .fetch import task_fetch  # noqa: E402
from .history import task_dashboard, task_usage  # noqa: E402
from .inspect import task_doctor, task_logs, task_status  # noqa: E402
from .keys import task_keys  # noqa: E402
from .outdated import task_outdated  # noqa: E402
from .profile import task_profile  # noqa: E402
from .run import task_down, task_preflight, task_ready, task_restart, task_start, task_up  # noqa: E402
from .upgrade import task_rollback, task_upgrade  # noqa: E402
from .cliparse import install as _install_cliparse  # noqa: E402
from .usage import install as _install_usage  # noqa: E402

_install_usage()
_install_cliparse()

task_flowgate = one_creator([
    task_up, task_down, task_restart, task_status, task_logs, task_doctor, task_config, task_secrets, task_render,
    task_check, task_init, task_fetch, task_outdated, task_preflight, task_start, task_ready, task_login, task_accounts,
    task_import, task_integrate, task_smoke, task_models, task_profile, task_export, task_usage,
    task_dashboard, task_keys, task_upgrade, task_rollback])

__all__ = ["DOIT_CONFIG", "task_flowgate"]
