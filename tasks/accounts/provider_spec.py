"""`providers:` in the config: each entry a known provider name, or a mapping that overrides or adds one.

Apart from tasks.accounts.providers so that reading the provider table never imports the schema.
"""

from __future__ import annotations

from ..config.schema import ListOf, Problem, Scalar, Spec, describe
from ..config.valuerules import PROVIDER_NAME
from .providers import FLOWS, TABLE, canonical, entry_name


class ProviderEntry(Spec):
    """A `providers:` entry: a known name, or a mapping {name, route?, flow?, type?}."""

    default = None
    required = False

    def check(self, value, path, problems, partial):
        if isinstance(value, str):
            if canonical(value) not in TABLE:
                problems.append(Problem(path, f"unknown provider {value!r} (known: {', '.join(TABLE)}); "
                                              "a new one needs a mapping with `name` and `route`"))
            return value
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected a provider name or a mapping, found {describe(value)}"))
            return value
        fields = {"name": Scalar(str, name=PROVIDER_NAME), "route": Scalar(str), "flow": Scalar(str, choices=FLOWS),
                  "type": Scalar(str)}
        for key, item in value.items():
            if key not in fields:
                problems.append(Problem(path + (key,), f"unknown key (known keys: {', '.join(fields)})"))
            else:
                fields[key].check(item, path + (key,), problems, partial)
        name = value.get("name")
        if not isinstance(name, str):
            problems.append(Problem(path + ("name",), "missing (this key is required)"))
        elif canonical(name) not in TABLE and not value.get("route"):
            problems.append(Problem(path + ("route",), f"missing: {name!r} is not a built-in provider, so it needs "
                                                       "`route:` (its <name>-auth-url management route)"))
        return value


class ProviderList(ListOf):
    """`providers:`: entries as above, each provider named once."""

    def check(self, value, path, problems, partial):
        out = super().check(value, path, problems, partial)
        seen: set[str] = set()
        for i, entry in enumerate(out if isinstance(out, list) else []):
            try:
                name = entry_name(entry)
            except (KeyError, TypeError):
                continue
            if name in seen:
                problems.append(Problem(path + (i,), f"provider {name!r} is listed twice"))
            seen.add(name)
        return out


PROVIDERS_SPEC = ProviderList(ProviderEntry())
