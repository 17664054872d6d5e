"""FlowGate's doit entry point: settings and task creators, all defined in tasks/.

Keep this file (and what it imports at load time) light: every `doit` command pays for it.
"""

from tasks.graph import *  # noqa: F401,F403  (DOIT_CONFIG and the task_* creators)
