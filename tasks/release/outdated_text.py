"""`doit outdated`'s report for a terminal, from what tasks.release.outdated.check found: one fact a
line, each escaped for printing (peer text included), with the command that moves.
"""

from __future__ import annotations

import time

from ..base.terminal import printable
from .installed import parse_time
from .outdated import PER_PAGE, SHOWN, UPGRADE


def _ago(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def _status(name: str, section: dict, now: float) -> tuple[list[str], str | None]:
    """The 'cannot check' line when the source could not be asked, and how to qualify what is
    shown: 'checked 3 h ago, cached; ...', 'as of the last check', or None when nothing was kept."""
    checked = parse_time(section["checked_at"])
    if section["source"] != "offline":
        age = _ago(now - checked) if checked is not None else ""
        return [], f"checked {age}" + (", cached; `--refresh` asks now" if section["source"] == "cache" else "")
    last = "no earlier answer is kept" if checked is None else \
        f"last checked {section['checked_at'][:16].replace('T', ' ')} UTC ({_ago(now - checked)}) (cached)"
    return [f"{name}: cannot check for newer releases: {section['error']}; {last}"], \
        None if checked is None else "as of the last check"


def _date(release: dict) -> str:
    return f"published {release['published_at'][:10]}" if release["published_at"] else "no publication date"


def report_lines(report: dict, now: float | None = None) -> list[str]:
    """The report for a terminal, one fact a line, each escaped for printing."""
    now = time.time() if now is None else now
    out = _cliproxy_lines(report["cliproxy"], now) + _litellm_lines(report["litellm"], now)
    out += [f"note: {n}" for n in report.get("notes", ())]
    return [printable(line) for line in out]


def _cliproxy_lines(c: dict, now: float) -> list[str]:
    name = "CLIProxyAPI"
    if c["state"] == "disabled":
        return [f"{name}: disabled in the config (cliproxy.enabled: false): nothing to check"]
    if c["state"] == "user-binary":
        return [f"{name}: you run your own binary ({c['binary']}, cliproxy.binary): FlowGate does not install "
                "or update it, so there is nothing to compare; its source says what is newer"]
    if c["state"] == "not-installed":
        return [f"{name}: not installed yet: `uv run doit fetch` (or `uv run doit up`) installs {c['pinned']} "
                f"from {c['repo']}"]
    inst = c["installed"]
    version = inst["version"] or inst["tag"]
    about = ", ".join(x for x in (inst["line"], inst["build"]) if x)
    pin = "latest (`doit up` moves to a newer release by itself)" if c["pinned"].lower() == "latest" else c["pinned"]
    out = [f"{name}: installed {inst['title']} {version}" + (f" ({about})" if about else "")
           + f", release {inst['tag']} of {inst['repo'] or c['repo']}; config pins {pin}"]
    if inst["repo"] and inst["repo"].lower() != c["repo"].lower():
        out.append(f"{name}: the config names {c['repo']} now: `uv run doit fetch` installs its {c['pinned']}")
    elif c["pinned"].lower() not in ("latest", inst["tag"].lower()):
        out.append(f"{name}: the config pins {c['pinned']}, not the installed {inst['tag']}: "
                   "`uv run doit fetch` installs the pin")
    out = _checked(name, c, now, out, lambda when: _cliproxy_newer(name, c, when))
    if c["refused"]:
        out.append(f"{name}: {c['refused']} release(s) in the answer had no usable tag and were left out")
    return out


def _checked(name: str, section: dict, now: float, out: list[str], newer) -> list[str]:
    """`out`, the 'cannot check' line if the source could not be asked, then what `newer(when)` says
    when an answer (fresh or kept) is there to say it from."""
    failed, when = _status(name, section, now)
    return out + failed + ([] if when is None else newer(when))


def _cliproxy_newer(name: str, c: dict, when: str) -> list[str]:
    newer, tag = c["newer"], c["installed"]["tag"]
    if not newer:
        return [f"{name}: up to date: no release of {c['repo']} is newer than {tag} ({when})"]
    stable = "" if c["outdated"] else "up to date with the newest release; "
    out = [f"{name}: {stable}{len(newer)} newer {'release' if len(newer) == 1 else 'releases'}"
           f"{'' if len(newer) < PER_PAGE else ' or more'} ({when}):"]
    for release in newer[:SHOWN]:
        back = release.get("rolled_back")
        out.append(f"  {release['tag']}  {_date(release)}" + ("  (pre-release)" if release["prerelease"] else "")
                   + (f"  (rolled back here {back['at'][:10]}: {back['reason']})" if back else ""))
    if len(newer) > SHOWN:
        out.append(f"  … and {len(newer) - SHOWN} more (`--json` lists them)")
    if not c["outdated"]:
        return out + [f"{name}: to try a pre-release: `{UPGRADE} --to {newer[0]['tag']}`"]
    # GitHub's "latest" may be the one that failed here: then the move names its tag
    skip = any(r.get("rolled_back") for r in newer)
    other = f", or `{UPGRADE} --to TAG` with another tag listed above" if len(newer) > 1 else ""
    other += " (a release rolled back here is not recommended)" if skip and c["newest"] else ""
    move = f"{UPGRADE} --to {c['newest']}" if skip else UPGRADE
    return out + [f"{name}: to move: `{move}` (to {c['newest']}){other}"]


def _litellm_lines(lite: dict, now: float) -> list[str]:
    name = "LiteLLM"
    if not lite["installed"]:
        return [f"{name}: not installed in this environment (`uv sync` installs it): nothing to compare"]
    if lite["line"] is None:
        return [f"{name}: installed {lite['installed']}, not a version FlowGate can compare"]
    return _checked(name, lite, now, [f"{name}: installed {lite['installed']} (line {lite['line']})"],
                    lambda when: _litellm_newer(name, lite, when))


def _litellm_newer(name: str, lite: dict, when: str) -> list[str]:
    patch, line = lite["newest_patch"], lite["line"]
    out = ([f"{name}: a newer patch of {line}: {patch} ({when})",
            f"{name}: to move: set `litellm[proxy]=={patch}` in pyproject.toml, then `uv sync`"]
           if lite["outdated"] else [f"{name}: up to date with its line {line} ({when})"])
    if lite["newer_line"]:
        out.append(f"{name}: newest release overall: {lite['newest']} (a newer line; informational)")
    return out
