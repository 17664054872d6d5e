"""Keep one service running without any `doit` command: restart it when it dies unexpectedly.

The supervisor is the process FlowGate records (it leads the service's process group); the
service is its child. Like a container's `restart: on-failure`: an unexpected exit is restarted
after a growing delay, at most `len(backoff)` times within `window` seconds; the next failure
gives up, and the supervisor exits with the service's own exit status so `doit status` and `doit
up` see a crashed service. A child that never became ready is not restarted at all: a service that
cannot start is the starting command's failure to report (with the log), not a loop to hide.

What it knows is in `.router/run/<service>.<supervisor pid>.state.json` (restarts, last exit code,
why it gave up; tasks.stack.launch.launcher_files), read by `doit status`; each restart and the giving up
is an event.
Stdlib + FlowGate's light modules only: it runs for the lifetime of the service.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ...base.paths import Paths
from .. import events
from ..launch.launcher_files import WORKER_FILE_ENV, describe_exit, read_json, state_path, sweep, worker_path


@dataclass(frozen=True)
class RestartPolicy:
    backoff: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # delay before restart 1, 2, 3, 4
    window: float = 60.0  # restarts counted within this many seconds


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Linux: the child gets SIGTERM if the supervisor is killed (no orphan keeps the port)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_prctl() -> None:
    """Look prctl up before any fork (nothing but a call happens in the child); `doit status`
    imports this module and never needs ctypes."""
    global _PRCTL
    if _PRCTL is not None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        pass


_PRCTL = None


class Forked:
    """A child forked from the supervisor that runs `target` in the same program: no second
    interpreter start and no re-import on LiteLLM's cold path. The Popen surface the loop uses."""

    def __init__(self, target, env: dict[str, str]):
        self.returncode = None
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with_parent()
                os.environ.update(env)
                code = target() or 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            if self.returncode is None:
                _, status = os.waitpid(self.pid, 0)  # a signal runs our handler, then the wait resumes
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(["forked", str(self.pid)], timeout)
            time.sleep(min(0.005, timeout))
        return self.returncode


class Supervisor:
    def __init__(self, paths: Paths, service: str, argv: list[str], ready, policy: RestartPolicy = RestartPolicy(),
                 in_process=None, env: dict[str, str] | None = None, stop_signal: int | None = None):
        """`in_process`: run this callable in a forked child instead of executing `argv`; `env`: what
        every start of the child gets on top of this environment (the config that booted, for LiteLLM)."""
        self.paths, self.service, self.argv, self.ready, self.policy = paths, service, argv, ready, policy
        self.env = dict(env or {})
        self.in_process = in_process
        self.stop_signal = stop_signal  # what the child gets for any stop signal (PostgreSQL: SIGINT, a fast shutdown)
        self.pid = os.getpid()
        self.stopping = False
        self.child: subprocess.Popen | None = None
        self.state = {"service": service, "launcher_pid": self.pid, "service_pid": None, "state": "starting",
                      "restarts": 0, "last_exit_code": None, "last_exit_at": None, "detail": ""}

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        _load_prctl()
        sweep(self.paths, self.service)
        ever_ready, recent = False, []
        while True:
            code = self._spawn()
            if code is None:
                ever_ready = self._wait() or ever_ready
                code = self.child.returncode
            self._update(last_exit_code=code, last_exit_at=time.time())
            if self.stopping:
                return self._stopped()
            if not ever_ready:
                self._update(state="failed", detail=f"{describe_exit(code)} before it was ready: not restarted")
                return code
            now = time.monotonic()
            recent = [t for t in recent if now - t < self.policy.window]
            self._event("crash", self.service, "exited", describe_exit(code), pid=self.state["service_pid"])
            if len(recent) >= len(self.policy.backoff):
                why = (f"gave up: {len(recent) + 1} unexpected exits within {self.policy.window:.0f} s, "
                       f"the last {describe_exit(code)}")
                self._update(state="gave-up", detail=why)
                self._event("give-up", self.service, "failed", why, launcher_pid=self.pid)
                self._say(why)
                return code
            delay = self.policy.backoff[len(recent)]
            self._update(state="restarting", detail=f"it {describe_exit(code)}; restarting in {delay:g} s",
                         attempt=len(recent) + 1, next_at=time.time() + delay)
            self._say(f"{self.service} {describe_exit(code)}; restarting in {delay:g} s")
            if not self._sleep(delay):
                return self._stopped()
            recent.append(time.monotonic())
            self._update(restarts=self.state["restarts"] + 1)
            self._event("restart", self.service, "ok",
                          f"restart {len(recent)} of {len(self.policy.backoff)} within "
                          f"{self.policy.window:.0f} s: it {describe_exit(code)}", launcher_pid=self.pid)

    def _stopped(self) -> int:
        """A requested stop: keep what the server drained in the state file (a swap reports it)."""
        worker = worker_path(self.paths, self.service, self.pid)
        drained = (read_json(worker) or {}).get("drained")
        self._update(state="stopped", detail="stopped on request", drained=drained)
        with contextlib.suppress(FileNotFoundError):
            worker.unlink()
        return 0

    def _spawn(self) -> int | None:
        """Start the child; None, or an exit code when it could not even be executed."""
        own = {**self.env, WORKER_FILE_ENV: str(worker_path(self.paths, self.service, self.pid))}
        env = {**os.environ, **own}
        try:
            if self.in_process is not None:
                self.child = Forked(self.in_process, own)
            else:
                self.child = subprocess.Popen(self.argv, env=env, preexec_fn=_die_with_parent, close_fds=True)
        except OSError as exc:  # e.g. the binary was removed since the first start
            self._say(f"cannot execute {self.argv[0]}: {exc.strerror or exc}")
            return 127
        self._update(service_pid=self.child.pid, state="starting", detail="", started_at=time.time())
        return None

    def _wait(self) -> bool:
        """Until the child exits; whether it became ready meanwhile."""
        interval = 0.02
        while True:
            try:
                self.child.wait(timeout=interval)
                return False
            except subprocess.TimeoutExpired:
                pass
            if self.ready(self.child.pid):
                self._update(state="running", detail="", ready_at=time.time())
                self.child.wait()  # signals interrupt it, run our handler, and the wait resumes
                return True
            interval = min(interval * 1.5, 0.25)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; False when asked."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return not self.stopping

    def _on_signal(self, sig, _frame) -> None:
        self.stopping = True
        # FlowGate signals the whole group; a signal sent to this pid alone must reach the service too.
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child.pid, self.stop_signal or sig)

    # ------------------------------------------------------------------ reporting

    def _update(self, **changes) -> None:
        self.state.update(changes)
        with contextlib.suppress(OSError):
            _write_json(state_path(self.paths, self.service, self.pid), self.state)

    def _event(self, *args, **kw) -> None:
        """An event line; the service's supervision never fails over its log (a full disk, a link)."""
        from ...base.errors import FlowgateError

        with contextlib.suppress(FlowgateError, OSError):
            events.record(self.paths, *args, **kw)

    def _say(self, text: str) -> None:
        print(f"--- flowgate launcher: {text} ---", flush=True)


# ---------------------------------------------------------------------- readiness checks


def worker_ready(paths: Paths, service: str, supervisor_pid: int):
    """Ready when the in-process server (litellm_server) reports it listens, for this child."""
    path = worker_path(paths, service, supervisor_pid)

    def check(child_pid: int) -> bool:
        data = read_json(path)
        return bool(data and data.get("pid") == child_pid and data.get("ready"))

    return check


def http_ready(host: str, port: int, path: str):
    from .probe import http_ok

    return lambda _child_pid: http_ok(host, port, path, timeout=0.5)


def exit_like(code: int) -> int:
    """Exit as the child did: re-raise its signal, else return its code."""
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled anyway
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code
