"""Validate what `doit export:*` writes against the published schemas, with packages that ship them:
kubernetes-validate (the Kubernetes API's OpenAPI schemas, per release) and check-jsonschema's
vendored copy of the Compose specification's JSON schema. Offline, no hand-written checks."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

# The shipped config's models as flow-style entries, for a local.yaml that adds direct ones (lists replace whole).
NAMED_MODELS = "".join(f"      - {{name: {n}}}\n" for n in ("gpt-5.5", "claude-sonnet-4-6"))  # served ids, named


def k8s_docs(directory: Path) -> list[dict]:
    docs = []
    for path in sorted(directory.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def validate_k8s(docs: list[dict]) -> None:
    """Every document against the newest Kubernetes release the package ships, strictly (unknown fields fail)."""
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    assert docs, "no manifest to validate"
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError with the path


def compose_schema() -> dict:
    from importlib.resources import files

    return json.loads((files("check_jsonschema.builtin_schemas") / "vendor" / "compose-spec.json").read_text())


def validate_compose(doc: dict) -> None:
    import jsonschema

    schema = compose_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


def by_kind(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: found {len(found)}"
    return found[0]


def files_holding(directory: Path, value: str) -> list[str]:
    """Every file below `directory` whose bytes contain `value`."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file() and value.encode() in p.read_bytes())
