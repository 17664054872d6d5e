"""Member keys kept for this machine's clients (`doit keys create|rotate NAME --keep`), so that
`integrate:codex --key NAME` / `integrate:claude --key NAME` can wire a client with a member's key
the way they wire it with the master key: a key helper command reads the key at request time, and
no client file holds it.

The key database keeps hashes only; a kept key is a copy beside the master key, in
`.router/secrets/members/<name>` (0600 in a 0700 directory, written atomically, never through a
link). Opt-in: whoever can read `.router/secrets/` can read the master key already, which is worth
more than any member's, but a key that is never kept cannot leak from this host at all. `rotate`
rewrites a kept copy (a wired client sends the new key from its next request on), `revoke` deletes
it (the helper then fails, saying why).
"""

from __future__ import annotations

from pathlib import Path

from ..base.fsutil import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, atomic_write, ensure_dir, refuse_link
from ..base.paths import Paths

MEMBERS = "members"


def key_path(paths: Paths, name: str) -> Path:
    """Where `name`'s key is kept (a name is letters, digits and `._@+-`, never `/`: tasks.keys.manage)."""
    return paths.secrets_dir / MEMBERS / name


def keep(paths: Paths, name: str, key: str) -> Path:
    folder = key_path(paths, name).parent
    ensure_dir(paths.secrets_dir, PRIVATE_DIR_MODE)
    ensure_dir(folder, PRIVATE_DIR_MODE)
    target = key_path(paths, name)
    refuse_link(target)  # os.replace would replace a link, never follow it: said anyway, as for every secret
    atomic_write(target, key + "\n", mode=PRIVATE_FILE_MODE, only_if_changed=False)
    return target


def drop(paths: Paths, name: str) -> None:
    key_path(paths, name).unlink(missing_ok=True)


def is_kept(paths: Paths, name: str) -> bool:
    path = key_path(paths, name)
    return path.is_file() and not path.is_symlink()
