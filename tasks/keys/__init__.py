"""Member keys for a team, the control plane's side (issue 30): `doit keys create|list|revoke|rotate`.

manage  writes `.router/keys.sqlite3` (tasks.gateway.keys.store: hashed keys, WAL, 0600, no link) and
        reads it for the listing; a key is returned once, at create and rotate, and never stored there.
kept    with `--keep`, a private copy of a key in .router/secrets/members/ for `integrate --key NAME`
        (the clients' key helper reads it; revoke deletes it).
The gateway reads the same database (tasks.gateway.keys.book) and enforces the limits.
"""
