"""Local processes for the demo, the tests and the benchmarks: each on a free port, in its own process group.

Nothing here is used by the web process or the workers in production; it starts the private
Redis, MLflow server, sandbox servers and bot processes that `make demo`, `make test` and
`make bench` need.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.waiting import TimedOut, wait_until


class ServiceError(RuntimeError):
    """A local service did not start; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_ready(url: str) -> bool:
    """The one readiness check: `url` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class Service:
    """A started process group with the URL it serves and the log file it writes."""

    name: str
    process: subprocess.Popen
    url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after `timeout`."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the process group at once (for crash tests)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(5)


def start_process(
    name: str,
    argv: list[str],
    *,
    workdir: Path,
    url: str,
    ready: Callable[[], bool],
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> Service:
    """Start `argv` in a new session, logging to workdir/<name>.log, and wait until `ready()`."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    service = Service(name, process, url, log_path, env or {})

    def ready_unless_exited() -> bool:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with {process.returncode}:\n{service.log_tail()}")
        return ready()

    try:
        wait_until(ready_unless_exited, timeout, what=f"{name} to be ready", every=0.05)
    except TimedOut:
        service.stop()
        raise ServiceError(f"{name} not ready after {timeout:.0f} s:\n{service.log_tail()}") from None
    return service
