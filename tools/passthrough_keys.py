"""Generate tasks/config/passthrough_keys.json: the settings keys the pinned versions accept.

`doit check` compares litellm_settings, router_settings, general_settings and cliproxy.settings
against this list ("did you mean"), without importing LiteLLM (~10 s). Re-run after changing the
pinned LiteLLM or CLIProxyAPI release, and commit the result:

    uv run python tools/passthrough_keys.py                      # LiteLLM part from the installed package
    uv run python tools/passthrough_keys.py --cliproxy-source DIR --cliproxy-release "router-for-me/CLIProxyAPI v7.2.140"

DIR holds the pinned CLIProxyAPI tag's `config.example.yaml` and `internal/config/` (e.g.
`git archive v7.2.140 internal/config config.example.yaml | tar -x -C DIR`).

Where each list comes from (LiteLLM 1.108.x):
- litellm_settings: the proxy sets every key on the `litellm` module (`setattr(litellm, key, value)`)
  after handling some by name (`key == "cache"`, ...): the module's public settings plus those names.
- router_settings: `Router.get_valid_args()` minus ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG, exactly
  the filter the proxy applies (anything else it logs as ignored).
- general_settings: the fields of `ConfigGeneralSettings` plus every `general_settings.get("…")` /
  `general_settings["…"]` the proxy's source reads.
- cliproxy.settings: the yaml tags of the Go `Config` struct (and the structs it inlines), plus the
  top-level keys of config.example.yaml, commented-out ones included. Without --cliproxy-source
  the committed list is kept.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import types
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tasks" / "config" / "passthrough_keys.json"
_KEY_BRANCH = re.compile(r'\bkey == "([A-Za-z_][A-Za-z0-9_]*)"')
_GENERAL_READ = re.compile(r'general_settings(?:\.get\(|\[)\s*"([A-Za-z_][A-Za-z0-9_]*)"')
_EXAMPLE_KEY = re.compile(r"^#? ?([a-z][a-z0-9-]*):", re.MULTILINE)
_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
_FIELD = re.compile(r'^\t(?:\w+\s+)?(\*?[^\s`]+)\s+`yaml:"([^",]*)(,inline)?', re.MULTILINE)


def litellm_lists() -> dict:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no price-map download
    import litellm
    from litellm.constants import ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG
    from litellm.proxy import _types, proxy_server

    module_settings = {
        name for name, value in vars(litellm).items()
        if not name.startswith("_") and not isinstance(value, (types.ModuleType, types.FunctionType, type))
        and not callable(value)
    }
    handled = set(_KEY_BRANCH.findall(inspect.getsource(proxy_server.ProxyConfig)))
    router = set(litellm.Router.get_valid_args()) - set(ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG)
    proxy_dir = Path(proxy_server.__file__).parent
    general = set(_types.ConfigGeneralSettings.model_fields)
    for source in proxy_dir.rglob("*.py"):
        general |= set(_GENERAL_READ.findall(source.read_text(encoding="utf-8", errors="replace")))
    return {
        "litellm_version": version("litellm"),
        "litellm_settings": sorted(module_settings | handled),
        "router_settings": sorted(router),
        "general_settings": sorted(general),
    }


def cliproxy_keys(source: Path) -> list[str]:
    keys = set(_EXAMPLE_KEY.findall((source / "config.example.yaml").read_text(encoding="utf-8")))
    structs = {}
    for go in sorted((source / "internal" / "config").glob("*.go")):
        if not go.name.endswith("_test.go"):
            structs.update(_STRUCT.findall(go.read_text(encoding="utf-8")))
    pending, seen = ["Config"], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in structs:
            continue
        seen.add(name)
        for field_type, tag, inline in _FIELD.findall(structs[name]):
            if inline:
                pending.append(field_type.lstrip("*"))
            elif tag not in ("", "-"):
                keys.add(tag)
    return sorted(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cliproxy-source", type=Path, help="the pinned CLIProxyAPI tag's source (see above)")
    parser.add_argument("--cliproxy-release", default=None, help="which release that source is")
    args = parser.parse_args()
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    data = {"generated_by": "tools/passthrough_keys.py", **litellm_lists()}
    if args.cliproxy_source:
        data["cliproxy_release"] = args.cliproxy_release or str(args.cliproxy_source)
        data["cliproxy_settings"] = cliproxy_keys(args.cliproxy_source)
    else:
        data["cliproxy_release"] = old.get("cliproxy_release")
        data["cliproxy_settings"] = old.get("cliproxy_settings", [])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    counts = ", ".join(f"{k}: {len(v)}" for k, v in data.items() if isinstance(v, list))
    print(f"wrote {OUT.relative_to(ROOT)} ({counts})")


if __name__ == "__main__":
    main()
