"""The dashboard: one page and its data, served by the gateway's process on its own port under
/flowgate/dashboard, refused without the token of `.router/secrets/dashboard_token`.

routes  the ASGI wrapper: token check, the page, its JSON (gathered by a child process:
        tasks.inspect.dashboard_data, which reads status, quota and usage)
page    the HTML, CSS and the small script that draws the charts as inline SVG (no build step)
token   the token file and the URL `doit dashboard` prints
"""
