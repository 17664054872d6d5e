"""SHA-256 a release vouches for: the asset's `digest` and the release's `checksums.txt`.
"""

from __future__ import annotations

import re

from ..base.errors import FlowgateError

CHECKSUM_ASSETS = ("checksums.txt", "sha256sums", "sha256sums.txt")
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_checksums(text: str) -> dict[str, str]:
    """`<sha256 hex>  <name>` lines (also `<hex> *<name>`) -> {name: hex}."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or not HEX64.match(parts[0]):
            continue
        name = parts[1].strip().lstrip("*")
        if name.startswith("./"):
            name = name[2:]
        sums[name] = parts[0].lower()
    return sums


def digest_of(asset: dict) -> str | None:
    digest = asset.get("digest")
    if not isinstance(digest, str) or ":" not in digest:
        return None
    algo, _, value = digest.partition(":")
    if algo.strip().lower() != "sha256":
        return None
    if not HEX64.match(value.strip()):
        raise FlowgateError(f"release asset {asset.get('name')} has a malformed digest {digest!r}",
                            "the release metadata looks corrupt; nothing was installed")
    return value.strip().lower()


def _checksums_asset(release: dict) -> dict | None:
    for asset in release.get("assets", []):
        name = str(asset.get("name", "")).lower() if isinstance(asset, dict) else ""
        if name in CHECKSUM_ASSETS or name.endswith("_checksums.txt"):
            if isinstance(asset.get("browser_download_url"), str):
                return asset
    return None


def expected_sha256(gh, release: dict, asset: dict) -> dict[str, str]:
    """{source: hex} from the asset's digest and the release's checksums file (when present)."""
    expected: dict[str, str] = {}
    digest = digest_of(asset)
    if digest:
        expected["digest"] = digest
    sums_asset = _checksums_asset(release)
    if sums_asset:
        listed = parse_checksums(gh.get_text(sums_asset["browser_download_url"]))
        value = listed.get(asset["name"])
        if value is None:  # tolerate case differences in the listed name
            value = next((v for k, v in listed.items() if k.lower() == asset["name"].lower()), None)
        if value:
            expected[sums_asset["name"]] = value
    if len(set(expected.values())) > 1:
        raise FlowgateError(
            f"the release's checksums for {asset['name']} disagree: "
            + ", ".join(f"{k} says {v}" for k, v in expected.items()),
            "the release metadata is inconsistent or tampered with; nothing was installed",
        )
    return expected
