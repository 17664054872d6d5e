"""Tasks that turn config/ into files under .router/: config, secrets, render, check."""

from __future__ import annotations

import json
import os

from doit.tools import config_changed

from ..base.fsutil import PRIVATE_FILE_MODE, atomic_write
from ..config.names import RENDERED
from ..config.view import cliproxy
from ..services import secrets
from .common import PATHS, action, read_stack, read_stack_or_none

# The secrets this config uses (as the last `config` run left it; the action asks the current one).
SECRET_FILES = [str(PATHS.secret(name)) for name in secrets.needed(read_stack_or_none())]
SCHEMA_SOURCES = [str(PATHS.root / "tasks" / name) for name in (
    "config/load.py", "config/schema.py", "config/teamspec.py", "config/valuerules.py", "config/passthrough.py",
    "accounts/provider_spec.py", "config/profiles.py", "config/passthrough_keys.json")]


def _config_files() -> list[str]:
    """The config files, and the profile chosen with `doit profile` (it overrides `profile:`)."""
    return [str(p) for p in (PATHS.base_config, PATHS.local_config, PATHS.profile_choice) if p.exists()]


def _config_inputs() -> list[str]:
    # Regular files only: doit hashes every file_dep, and reading a FIFO would block (the config
    # task, which runs because _config_files() differs, refuses it with a message).
    return [f for f in _config_files() if os.path.isfile(f)]


def write_stack() -> dict:
    from ..stack.lock import stack_lock

    # Under the stack lock: `doit upgrade` writes the pin into local.yaml while it holds it, and a
    # stack.json built from the old pin must not land after the new one.
    with stack_lock(PATHS, what="config"):
        return _write_stack()


def _write_stack() -> dict:
    from ..config.load import load_stack
    from ..services.common import render_inputs

    stack = load_stack(PATHS, references=True)  # every problem at once, before anything is written
    # 0600: litellm.env values (and whatever else a user passes through) may be secrets.
    changed = atomic_write(PATHS.stack_json, _json(stack), mode=PRIVATE_FILE_MODE)
    from ..inspect.pending import config_sources

    atomic_write(PATHS.config_sources, _json(config_sources(PATHS)))  # what stack.json was built from (status)
    for service in RENDERED:
        atomic_write(PATHS.render_inputs(service), _json(render_inputs(stack, service)), mode=PRIVATE_FILE_MODE)
    from ..accounts.providers import remember_problems

    remember_problems(PATHS, stack)  # `up` warns about a provider the installed binary lacks
    return {"changed": changed, "profile": stack["profile"]}


def _json(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def task_config():
    """Validate config/ and resolve the active profile into .router/state/stack.json."""
    return {
        "actions": [action(write_stack)],
        # The code that validates is an input too: after an upgrade stack.json is rebuilt in the
        # shape this version reads.
        "file_dep": _config_inputs() + SCHEMA_SOURCES,
        # A local.yaml that appears or disappears changes the inputs even if no listed file did.
        "uptodate": [config_changed({"inputs": _config_files()})],
        "targets": [str(PATHS.stack_json), *(str(PATHS.render_inputs(s)) for s in RENDERED)],
        "clean": True,
    }


def make_secrets() -> dict:
    created = secrets.ensure_all(PATHS, read_stack())
    for name in created:
        print(f"generated {PATHS.secret(name)} (0600)")
    return {"created": created}


def task_secrets():
    """Generate missing secrets in .router/secrets/ (0600); existing ones are never replaced."""
    return {
        "actions": [action(make_secrets)],
        "targets": SECRET_FILES,
        "task_dep": ["config"],  # never generate anything for an invalid config
        "uptodate": [lambda: secrets.all_present(PATHS, read_stack_or_none())],
    }


def _key_files(stack: dict | None) -> list[str]:
    from ..services.litellm import litellm_key_files

    return [str(p) for p in litellm_key_files(PATHS, stack)] if stack else []


def _api_key_entries(stack: dict | None) -> list[dict]:
    return list(((stack or {}).get("cliproxy") or {}).get("api_keys") or [])


def _api_key_files(stack: dict | None) -> list[str]:
    from ..config.apikeys import key_files

    return [str(p) for p in key_files(PATHS, _api_key_entries(stack))]


def _api_key_fingerprint(stack: dict | None) -> str:
    from ..config.apikeys import fingerprint

    return fingerprint(_api_key_entries(stack))


def render_service(service: str) -> dict:
    from ..config.references import require_references
    from ..config.names import CLIPROXY
    from ..services.cliproxy import render_cliproxy
    from ..services.litellm import render_litellm_local

    stack = read_stack()
    require_references(PATHS, stack)
    values = secrets.read_all(PATHS, stack)
    if service == CLIPROXY:
        text, target = render_cliproxy(PATHS, stack, values), PATHS.cliproxy_rendered
    else:
        text, target = render_litellm_local(PATHS, stack, values), PATHS.litellm_config
        _copy_auth_hook()
    changed = atomic_write(target, text, mode=PRIVATE_FILE_MODE)  # both files hold secrets
    if service != CLIPROXY:
        from ..inspect.pending import remember_key_files

        remember_key_files(PATHS, stack)  # for `status`: a key file changed since this render
    if changed:
        print(f"rendered {target}")
    return {"changed": changed}


def _copy_auth_hook() -> None:
    from ..services.litellm import LITELLM_AUTH_HOOK

    atomic_write(PATHS.litellm_auth_hook, (PATHS.templates / LITELLM_AUTH_HOOK).read_bytes(), mode=PRIVATE_FILE_MODE)


def task_render():
    """Render both services' configs from templates/ into .router/ (only when inputs changed)."""
    from ..config.names import CLIPROXY, LITELLM
    from ..services.cliproxy import CLIPROXY_TEMPLATE
    from ..services.litellm import LITELLM_AUTH_HOOK, LITELLM_TEMPLATE

    stack = read_stack_or_none()  # once: every doit command loads these task definitions
    for service, templates, targets, outside in (
        (LITELLM, [LITELLM_TEMPLATE, LITELLM_AUTH_HOOK], [PATHS.litellm_config, PATHS.litellm_auth_hook],
         _key_files(stack)),  # only LiteLLM's config carries them
        (CLIPROXY, [CLIPROXY_TEMPLATE], [PATHS.cliproxy_rendered], _api_key_files(stack)),
    ):
        yield {
            "name": service,
            "doc": f"render {targets[0].relative_to(PATHS.home)}",
            "actions": [(action(render_service), [service])],
            "file_dep": [str(PATHS.render_inputs(service)), *SECRET_FILES, *(str(PATHS.templates / t) for t in templates),
                         *outside],
            "targets": [str(t) for t in targets],
            # a key read from the environment (cliproxy.api_keys) changed: render again
            "uptodate": [config_changed(_api_key_fingerprint(stack))] if service == CLIPROXY else [],
            "clean": True,
        }


def check_all() -> None:
    """Validate everything a render needs and render in memory; write nothing."""
    from ..accounts.providers import provider_problems
    from ..config.load import load_stack
    from ..base.errors import FlowgateError
    from ..services.cliproxy import render_cliproxy
    from ..services.litellm import render_litellm_local

    stack = load_stack(PATHS, references=True)  # the config's problems and its missing references, with file:line
    problems = [f"providers: {p.problem}: {p.fix}" for p in provider_problems(PATHS, stack)]
    try:
        values = {**secrets.placeholders(), **secrets.read_all(PATHS, stack)}
    except FlowgateError:
        values = secrets.placeholders()  # nothing generated yet: check the templates with stand-ins
    for render in (render_litellm_local, render_cliproxy) if not problems else ():
        try:
            render(PATHS, stack, values)
        except FlowgateError as exc:
            problems.append(exc.one_line())
    if problems:
        raise FlowgateError(f"{len(problems)} problem(s) found", "fix them and run `uv run doit check` again",
                            details=problems)
    from ..base.terminal import printable
    from ..catalog import store
    from ..catalog.routes import models_phrase
    from ..catalog.table import unserved_lines
    from ..config.ratelimits import unenforced

    for warning in unenforced(stack):
        print(f"warning: {printable(warning)}")
    for line in unserved_lines(stack, store.read(PATHS)):  # a warning: the catalog changes by itself
        print(line)
    print(f"config OK: profile {stack['profile']}, {models_phrase(stack)}, "
          f"litellm on {stack['litellm']['host']}:{stack['litellm']['port']}, "
          + (f"cliproxy on {stack['cliproxy']['host']}:{stack['cliproxy']['port']}"
             if cliproxy(stack).enabled else "cliproxy disabled"))


def task_check():
    """Validate config, secret references and templates; render in memory, write nothing (CI)."""
    return {"actions": [action(check_all)], "uptodate": [False]}


def init_home() -> None:
    from ..config.init import write_default_config

    target = PATHS.base_config
    if write_default_config(PATHS):
        print(f"wrote {target} (the commented default config)\n"
              f"put your changes in {PATHS.local_config}, then run `uv run doit up`")
    else:
        print(f"{target} already exists; left as it is")


def task_init():
    """Write the commented default config into FLOWGATE_HOME (or the checkout) when it has none."""
    return {"actions": [action(init_home)], "uptodate": [False], "verbosity": 2}
