"""`python -m tasks.gateway`: the gateway process (tasks.gateway.litellm_server.main)."""

import sys

from .litellm_server import main

sys.exit(main())
