"""What the user reads about the stack, changing nothing: `status` (every service, accounts,
models, stale client settings), `pending` (what `doit up` would change, and why) and `doctor`
(read-only checks, each with its fix).

May import every capability package below it; never doit (tasks/graph/inspect.py is the doit layer).
"""
