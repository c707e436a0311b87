"""Competing jobs for measurements on a busy machine: processes of small torch ops at torch's default
thread count (the situation of a shared node with several jobs), each bounded in time."""

from __future__ import annotations

import subprocess
import sys
import time

# A competing job: small matmuls and their backward at torch's default threads, until its deadline
# or until its parent (this process) closes its stdin. It prints "ready" once torch is imported.
COMPETITOR = """
import sys, threading, time, torch
deadline = time.monotonic() + float(sys.argv[1])
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
x, w = torch.randn(64, 128), torch.randn(128, 128, requires_grad=True)
print("ready", flush=True)
while time.monotonic() < deadline and not done.is_set():
    for _ in range(50):
        (x @ w).tanh().sum().backward()
"""
COMPETITOR_SECONDS = 900          # a competitor left behind by a crash stops by itself after this


class Competitors:
    """`n` competing processes for the duration of a `with` block (each bounded in time)."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", COMPETITOR, str(COMPETITOR_SECONDS)],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in self.procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"competitor {p.pid} did not start (exit {p.poll()})")
        time.sleep(0.5)           # let them reach their loop
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return False
