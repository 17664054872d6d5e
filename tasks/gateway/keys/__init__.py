"""Member keys in the gateway (issue 30): each member of a team sends a key of their own, checked on
every path in front of the lean path and LiteLLM's (tasks.gateway.gate); the master key stays the admin key.

store    the SQLite database `.router/keys.sqlite3`: schema, hashing, opening it (WAL, 0600, no link)
book     the gateway's read-only view: lookups by hash from an in-process copy, refreshed when the
         database changed (checked every REFRESH_S, so a revocation is seen within a second)
enforce  what a member key may do: unknown, revoked or expired (401), a model outside its patterns
         (403), over its requests per minute in this process (429 with retry-after)
spend    spend per member: the usage recorder's tokens priced by LiteLLM's offline price map
budget   a key over its budget this period (429 naming the reset), from sums a thread keeps
shared   rpm and tpm counted in Redis when the replicas share one (per process without, or while it fails)
resp     the small pipelined asyncio Redis client `shared` uses (a deadline per call)

Written by the control plane only (tasks.keys: `doit keys create|list|revoke|rotate`).
"""

MEMBER_SCOPE = "flowgate.member"  # ASGI scope key: the member's name once the gate admitted their key
