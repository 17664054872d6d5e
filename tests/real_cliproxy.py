"""The real CLIProxyAPI for the tests, built from the Go module proxy (never committed).

    uv run python -m tests.real_cliproxy          # build what the suite runs (CI does this first)
    binary("v7")                                  # in a test: the built binary, or a pytest skip

What is built: the mainline at the tag `config/flowgate.yaml` pins (`cliproxy.release.version`),
and the newest v8 tag the module proxy serves. `go install <module>/cmd/server@<tag>` cannot be
used: it first asks the proxy for the module's version list (to warn about deprecation), and this
proxy refuses version lists (403) while it serves the tagged versions themselves. So the module is
fetched with `go mod download` (checked against the checksum database, as `go install` would) and
built in its own directory with `go build`, stamped with its version the way its releases are.

Builds are kept in `$FLOWGATE_CLIPROXY_BUILDS` (default `~/.cache/flowgate-tests/cliproxy/<tag>/`,
outside any checkout, so later runs and clones reuse them); Go's own module and build caches make a
rebuild after a cache wipe take seconds rather than minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MODULE = "github.com/router-for-me/CLIProxyAPI"
ROOT = Path(__file__).resolve().parent.parent
HOW = ("install Go >= 1.26 (Debian: `apt-get install golang`, or https://go.dev/dl) and run "
       "`uv run python -m tests.real_cliproxy`")


class Unavailable(Exception):
    """This line cannot be built here (no Go, or the proxy does not serve it): the reason in one line."""


def pinned_tag() -> str:
    import yaml

    return yaml.safe_load((ROOT / "config" / "flowgate.yaml").read_text())["cliproxy"]["release"]["version"]


def cache_root() -> Path:
    return Path(os.environ.get("FLOWGATE_CLIPROXY_BUILDS") or Path.home() / ".cache" / "flowgate-tests" / "cliproxy")


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not go:
        raise Unavailable(f"Go is not installed: {HOW}")
    return go


def _go_env() -> dict:
    # -modcacherw: the module cache stays deletable; CGO off: a static binary like the release's no-plugin build
    return {**os.environ, "GOFLAGS": "-modcacherw", "CGO_ENABLED": "0"}


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=_go_env(), capture_output=True, text=True, timeout=timeout)


def newest_v8() -> str:
    """The newest v8 tag the module proxy serves; Unavailable with the proxy's own words when none."""
    done = _run([_go(), "list", "-m", "-json", f"{MODULE}/v8@latest"], timeout=120)
    if done.returncode != 0:
        raise Unavailable(f"the Go module proxy serves no v8 of {MODULE}: {' '.join(done.stderr.split())}")
    return json.loads(done.stdout)["Version"]


def module_path(tag: str) -> str:
    return f"{MODULE}/{tag.split('.')[0]}"  # v7.2.140 -> .../v7 (Go's major-version suffix)


def build(tag: str, log=print) -> Path:
    """The binary for `tag`, built once into the cache; Unavailable when it cannot be had here."""
    out_dir = cache_root() / tag
    binary, stamp = out_dir / "cli-proxy-api", out_dir / "build.json"
    if binary.is_file() and stamp.is_file():
        return binary
    go = _go()
    started = time.monotonic()
    got = _run([go, "mod", "download", "-json", f"{module_path(tag)}@{tag}"])
    info = json.loads(got.stdout or "{}") if got.stdout.strip().startswith("{") else {}
    if got.returncode != 0 or "Dir" not in info:
        raise Unavailable(f"the Go module proxy does not serve {module_path(tag)}@{tag}: "
                          f"{' '.join((info.get('Error') or got.stderr).split())}")
    commit = ((info.get("Origin") or {}).get("Hash") or "none")[:7]
    built_at = json.loads(Path(info["Info"]).read_text()).get("Time", "unknown")
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".cli-proxy-api.{os.getpid()}"
    flags = f"-s -w -X main.Version={tag.lstrip('v')} -X main.Commit={commit} -X main.BuildDate={built_at}"
    log(f"building the real CLIProxyAPI {tag} from the Go module proxy ...")
    done = _run([go, "build", "-trimpath", "-ldflags", flags, "-o", str(partial), "./cmd/server"], cwd=Path(info["Dir"]))
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        # Go's own error, whole: in CI a build failure fails the run with it
        raise RuntimeError(f"go build of {module_path(tag)}@{tag} failed:\n{done.stderr}")
    partial.rename(binary)
    seconds = round(time.monotonic() - started, 1)
    stamp.write_text(json.dumps({"tag": tag, "module": module_path(tag), "sum": info.get("Sum"), "commit": commit,
                                 "built_at": built_at, "seconds": seconds}, indent=2))
    log(f"built {binary} in {seconds} s")
    return binary


def lines() -> dict[str, str]:
    """line -> tag the suite runs: v7 (the pin) always; v8 when the proxy serves one (else the reason)."""
    out = {"v7": pinned_tag()}
    try:
        out["v8"] = newest_v8()
    except Unavailable as exc:
        out["v8"] = f"unavailable: {exc}"
    return out


_BUILT: dict[str, Path | str] = {}


def binary(line: str) -> Path:
    """For a test: the built binary of `line` (building it once if Go is here), else pytest.skip with why."""
    import pytest

    if line not in _BUILT:
        try:
            tag = pinned_tag() if line == "v7" else newest_v8()
            _BUILT[line] = build(tag, log=lambda msg: print(msg, file=sys.stderr))
        except Unavailable as exc:
            _BUILT[line] = str(exc)
    found = _BUILT[line]
    if isinstance(found, str):
        pytest.skip(f"real CLIProxyAPI {line}: {found}")
    return found


def main() -> int:
    try:
        _go()
    except Unavailable as exc:
        print(f"real CLIProxyAPI: not built: {exc}; its tests will be skipped")
        return 0
    for line, tag in lines().items():
        if tag.startswith("unavailable: "):
            print(f"real CLIProxyAPI {line}: {tag.removeprefix('unavailable: ')}; its tests will be skipped")
            continue
        try:
            path = build(tag)
        except (Unavailable, RuntimeError) as exc:
            print(f"real CLIProxyAPI {line}: {exc}", file=sys.stderr)
            return 1  # the pinned tag must build: CI fails with Go's own words
        stamp = json.loads((path.parent / "build.json").read_text())
        print(f"real CLIProxyAPI {line}: {tag} at {path} (built in {stamp['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
