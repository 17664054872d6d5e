"""Usage history: every request through the gateway, kept in `.router/usage.sqlite3`.

recorder  the ASGI wrapper inside LiteLLM's process: times each request, keeps references to its
          bodies, hands them to a background thread (never parses or writes on the request path)
extract   model and tokens from request / response bodies (runs in that thread)
store     the SQLite database: schema, WAL, batched inserts, retention, the health file
report    `doit usage`: totals per model / day / hour / account, percentiles, text / JSON / CSV

May import tasks.paths, tasks.errors, tasks.fsutil; nothing here imports doit or LiteLLM.
"""
