"""A terminal program driven as a person would: tmux runs it, send-keys types, capture-pane reads
the screen. Every wait is on what the screen shows (polled), never a fixed sleep."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time


class Screen:
    def __init__(self, argv: list[str], cwd, env: dict, width: int = 140, height: int = 45):
        self.tmux = shutil.which("tmux")
        self.socket = f"flowgate-test-{os.getpid()}-{time.monotonic_ns()}"
        command = "env -i " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " " + shlex.join(argv)
        self._run("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), "-c", str(cwd), command)
        self._run("set-option", "-t", "t", "remain-on-exit", "on")

    def _run(self, *args: str) -> str:
        proc = subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def text(self) -> str:
        """The screen as shown (a no-break space, as Claude Code draws after its prompt mark, as a space)."""
        return self._run("capture-pane", "-p", "-t", "t").replace("\u00a0", " ")

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """The first match of `pattern` on the screen, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            found = re.search(pattern, screen)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear within {timeout:.0f} s; the screen:\n{screen}")
            time.sleep(0.1)  # the poll interval of a readiness condition, not a wait for time to pass

    def wait_gone(self, text: str, timeout: float = 30.0) -> None:
        """Wait until `text` is no longer on the screen (a dialog answered)."""
        deadline = time.monotonic() + timeout
        while text in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} still on the screen after {timeout:.0f} s:\n{self.text()}")
            time.sleep(0.1)

    def answer_dialogs(self, dialogs: tuple[str, ...], ready: str, timeout: float = 90.0) -> list[str]:
        """Take each dialog's default (Enter) until `ready` (a pattern) shows; returns the dialogs
        seen, in order."""
        seen = []
        pattern = "|".join([*(re.escape(t) for t in dialogs), ready])
        deadline = time.monotonic() + timeout
        while True:
            found = self.wait_for(pattern, max(1.0, deadline - time.monotonic())).group(0)
            if found not in dialogs:
                return seen
            seen.append(found)
            # An Enter that lands while the dialog is drawn but not yet reading keys is lost (seen on a
            # loaded machine with Codex's folder-trust dialog): press it again while the dialog stays.
            for attempt in range(10):
                self.send("Enter")
                try:
                    self.wait_gone(found, 3.0)
                    break
                except AssertionError:
                    if attempt == 9 or time.monotonic() > deadline:
                        raise

    def submit(self, text: str, prompt_mark: str, answered: str, timeout: float = 60.0) -> re.Match:
        """Type `text`, wait until the input line shows it, press Enter, and wait for `answered`.
        An Enter that lands while the client still takes the text for a paste is swallowed: while
        the input line (`prompt_mark` + text, last on the screen) still holds the text, press it again."""
        self.type(text)
        self.wait_for(re.escape(f"{prompt_mark} {text}"))
        deadline = time.monotonic() + timeout
        while True:
            self.send("Enter")
            try:
                return self.wait_for(answered, 3.0)
            except AssertionError:
                lines = [line.strip() for line in self.text().splitlines() if line.strip().startswith(prompt_mark)]
                if time.monotonic() > deadline or not lines or lines[-1] != f"{prompt_mark} {text}":
                    return self.wait_for(answered, max(1.0, deadline - time.monotonic()))

    def send(self, *keys: str) -> None:
        self._run("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._run("send-keys", "-t", "t", "-l", text)

    def dead(self) -> bool:
        return self._run("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "1"

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
