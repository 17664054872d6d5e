"""doit reporter: one clean block per failed task, no traceback for expected failures.

A FlowgateError raised in an action reaches doit as a TaskFailed carrying the error (see
tasks.graph.common.action); this reporter prints its message, details and hint to stderr, and
nothing else. Real bugs keep doit's traceback. FLOWGATE_DEBUG=1 adds the traceback to every failure.
"""

from __future__ import annotations

import sys
import traceback

from doit.reporter import ConsoleReporter

from .exits import debug_enabled


class FlowgateReporter(ConsoleReporter):
    desc = "FlowGate: clean one-line failures"

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self.errstream = sys.stderr

    @staticmethod
    def _quiet(task) -> bool:
        return bool((task.meta or {}).get("quiet"))

    def execute_task(self, task):
        if not self._quiet(task):
            super().execute_task(task)

    def skip_uptodate(self, task):
        pass  # "-- config", "-- secrets", ...: nothing happened, so nothing to say (summaries say "unchanged")

    def write(self, text):
        try:
            super().write(text)
        except BrokenPipeError:  # the reader of stdout has gone (`doit up | head -1`)
            from .exits import silence_stdout

            silence_stdout()

    def add_failure(self, task, fail):
        if not fail.report:
            return
        error = getattr(fail, "flowgate", None)
        if error is None:
            super().add_failure(task, fail)
            if not debug_enabled():
                self.errstream.write("This looks like a bug in FlowGate; please report it with the output above.\n")
            return
        self.outstream.flush()
        text = error.render()
        if debug_enabled():
            text += "\n" + "".join(traceback.format_exception(error))
        self.errstream.write(text + "\n")
        self.errstream.flush()

    def runtime_error(self, msg):
        # doit's own errors (missing dependency file, bad task name): one line, no banner.
        first = msg.strip().splitlines()[0] if msg.strip() else msg
        self.errstream.write(f"error: {first}\n")

    def complete_run(self):
        self.failures = [f for f in self.failures if getattr(f["exception"], "flowgate", None) is None]
        self.runtime_errors = []
        super().complete_run()
