"""`doit init`: give an empty FLOWGATE_HOME the commented default config.

The default is the checkout's own config/flowgate.yaml, copied byte for byte (comments are the
documentation). An existing file is never replaced.
"""

from __future__ import annotations

from ..base.fsutil import atomic_write
from ..base.paths import Paths, ROOT

DEFAULT_CONFIG = ROOT / "config" / "flowgate.yaml"


def write_default_config(paths: Paths) -> bool:
    """Write config/flowgate.yaml into the home unless it exists. Returns True when written."""
    target = paths.base_config
    if target.exists() or target.is_symlink():
        return False
    atomic_write(target, DEFAULT_CONFIG.read_bytes(), mode=0o644, only_if_changed=False)
    return True
