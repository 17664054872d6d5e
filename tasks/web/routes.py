"""Placeholder: the dashboard routes arrive with `doit dashboard`."""


def with_dashboard(app):
    return app
