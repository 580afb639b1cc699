"""A stand-in (`python -m sandbox.<name>`) as its own process, the way a person starts it: on a free port, in a
process group of its own, stopped with SIGTERM (SIGKILL if it lingers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(name: str, args: list[str], env: dict[str, str], timeout: float = 20.0) -> tuple[subprocess.Popen, str]:
    """`python -m sandbox.<name> --port 0 <args>`; (the process, the URL it says it listens on)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"sandbox.{name}", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
        env={**env, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(f"sandbox {name} listening on "):
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # drain output
            return proc, line.split(" on ", 1)[1].strip()
    stop(proc)
    pytest.fail(f"sandbox {name} did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)
