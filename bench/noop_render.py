"""No-op `doit render` against doit's own floor (one up-to-date task), same machine, same run.

Target (issue 2): <= 1.5x the floor.
"""

from __future__ import annotations

import statistics
import subprocess

from _harness import doit_argv, doit_floor_dir, floor_argv, flowgate_env, flowgate_home, summary, timed

floor_dir = doit_floor_dir()
home = flowgate_home()
env = flowgate_env(home)
subprocess.run(doit_argv("render"), cwd=home, env=env, check=True, capture_output=True)

# Interleave the two so drift on the machine hits both alike.
floor, render = [], []
for _ in range(5):
    floor += timed(floor_argv(), cwd=floor_dir, runs=4, warmup=1)
    render += timed(doit_argv("render"), cwd=home, env=env, runs=4, warmup=1)
ratio = statistics.median(render) / statistics.median(floor)
print(f"doit floor (1 up-to-date task): {summary(floor)}")
print(f"no-op doit render:              {summary(render)}")
print(f"ratio: {ratio:.2f}x (target <= 1.5x)")
