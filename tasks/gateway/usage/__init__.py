"""Usage history, written inside the gateway: every request through it, kept in `.router/usage.sqlite3`.

recorder  the ASGI wrapper: times each request, keeps references to its bodies, hands them to a
          background thread (never parses or writes on the request path)
extract   model and tokens from request / response bodies (runs in that thread)
store     the SQLite database: schema, WAL, batched inserts, retention, the health file
rollup    the hourly rollup kept with each batch, and the rules every sum follows

Read by the control plane: `doit usage` (tasks.usage) and the dashboard's data.
"""
