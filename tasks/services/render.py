"""Render the services' configs from the Jinja templates in templates/.

StrictUndefined turns a missing variable into an error instead of an empty string; values go
through tasks.yamlout so they load back exactly as written. jinja2 is imported only here, inside
functions: dodo.py must stay fast to import.
"""

from __future__ import annotations

from ..base import yamlout
from ..base.errors import FlowgateError
from ..base.paths import Paths


def render_template(paths: Paths, name: str, context: dict) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=yamlout.finalize,  # one escaping path: a bare {{ value }} is serialised as well
    )
    env.filters["yaml"] = yamlout.inline
    env.filters["block"] = yamlout.block
    env.filters["embedded"] = yamlout.embedded
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise FlowgateError(f"template {paths.templates / name} is missing",
                            "restore it with `git checkout templates/`") from None
    except jinja2.TemplateSyntaxError as exc:
        raise FlowgateError(f"templates/{name}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise FlowgateError(f"templates/{name}: {exc.message}",
                            "the template uses a value FlowGate does not provide") from None


def parse_rendered(name: str, text: str) -> object:
    """Rendered output must itself be valid YAML: catches a broken template before a service does."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FlowgateError(f"templates/{name} rendered invalid YAML: {exc}",
                            "fix the template") from None
