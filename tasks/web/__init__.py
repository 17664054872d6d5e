"""The dashboard: one page and its data, served by LiteLLM's process on the gateway's own port under
/flowgate/dashboard, refused without the token of `.router/secrets/dashboard_token`.

routes  the ASGI wrapper: token check, the page, its JSON (built in a worker thread)
data    what the page shows: status, quota, usage (tasks.inspect.status, tasks.accounts.quota, tasks.usage)
page    the HTML, CSS and the small script that draws the charts as inline SVG (no build step)
token   the token file and the URL `doit dashboard` prints

May import the core (tasks.*) but never doit.
"""
