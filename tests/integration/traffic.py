"""Steady traffic through the gateway while something changes underneath (a profile switch, a
CLIProxyAPI upgrade): every request must still succeed."""

from __future__ import annotations

import threading
import time

import httpx


class Traffic:
    """Two clients over keep-alive connections, each sending a request every ~100 ms: one plain, one
    streaming (so streams are in flight when the old instance drains)."""

    def __init__(self, st):
        self.st, self.results, self.stop = st, [], threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(stream,), daemon=True) for stream in (False, True)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _run(self, stream: bool):
        with httpx.Client(base_url=self.st.litellm_url, timeout=30,
                          headers={"Authorization": f"Bearer {self.st.master_key}"}) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                began = time.monotonic()
                self.results.append((began, self._one(client, f"{'s' if stream else 'p'}{n}", stream)))
                self.stop.wait(max(0.0, 0.1 - (time.monotonic() - began)))

    @staticmethod
    def _one(client, text: str, stream: bool) -> str | None:
        """None when the request succeeded, else what went wrong."""
        body = {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": text}], "stream": stream}
        try:
            if not stream:
                resp = client.post("/v1/chat/completions", json=body)
                ok = resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == f"double(gpt-5.4-mini): {text}"
                return None if ok else f"{resp.status_code}: {resp.text[:200]}"
            with client.stream("POST", "/v1/chat/completions", json=body) as resp:
                data = resp.read().decode()
            return None if resp.status_code == 200 and "[DONE]" in data else f"stream {resp.status_code}: {data[:200]}"
        except httpx.HTTPError as exc:
            return repr(exc)
