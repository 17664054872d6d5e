"""LiteLLM's boot where PYTHONDONTWRITEBYTECODE=1 is set (many container images), bare and under FlowGate.

Three boots of `litellm --config` until /health/liveliness answers, each with a bytecode cache of its
own (PYTHONPYCACHEPREFIX), so the venv's own __pycache__ does not count:
- "no bytecode": PYTHONDONTWRITEBYTECODE=1 and an empty cache: every boot compiles everything;
- "FlowGate, 1st boot" / "2nd boot": the environment FlowGate gives LiteLLM (tasks.services: the
  variable dropped), so the first boot leaves its bytecode behind and the next one reads it.
`.ci/run` (and `uv sync --compile-bytecode`) byte-compile at install instead, so even the first is fast.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from _harness import ROOT

sys.path.insert(0, str(ROOT))
from stack import litellm_alone  # noqa: E402
from tests.support import free_port  # noqa: E402

CONFIG = """model_list:
  - model_name: m
    litellm_params: {model: openai/m, api_base: "http://127.0.0.1:9/v1", api_key: x}
general_settings: {master_key: sk-bench-bytecode-0123456789}
"""


def boot(config: Path, **env) -> float:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return litellm_alone(config, free_port())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-bytecode-"))
    config = work / "config.yaml"
    config.write_text(CONFIG)
    cold = boot(config, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(work / "never"))
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    first = boot(config, PYTHONPYCACHEPREFIX=str(work / "flowgate"))
    second = boot(config, PYTHONPYCACHEPREFIX=str(work / "flowgate"))
    print(f"no bytecode (PYTHONDONTWRITEBYTECODE=1):  {cold:.2f} s")
    print(f"FlowGate's LiteLLM env, 1st boot:         {first:.2f} s")
    print(f"FlowGate's LiteLLM env, 2nd boot:         {second:.2f} s  ({cold / second:.2f}x faster than no bytecode)")


if __name__ == "__main__":
    main()
