"""Deep merge used for config/local.yaml over config/flowgate.yaml and for profile overlays.

Semantics (documented in the README): mappings merge key by key, recursively; anything else — a
scalar, a list, null — replaces the value below it whole. So a profile that sets `models:` replaces
the entire model list; to change one model's settings, repeat the list.
"""

from __future__ import annotations


def deep_merge(base: object, overlay: object) -> object:
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return overlay
