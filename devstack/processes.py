"""Local processes for the demo and the tests: each service on a free port, in its own process group.

Nothing here is used by the web process or the workers in production; it starts the private
Redis, MLflow server, sandbox servers and bot processes that `make demo` and `make test` need.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service did not start; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(5)

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
    env: dict[str, str] | None = None,
    ready: "callable[[], bool] | None" = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> Service:
    """Start `argv` in a new session, logging to workdir/<name>.log, and wait until `ready()`."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    log = open(log_path, "ab")
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=full_env, cwd=cwd, start_new_session=True,
    )
    log.close()
    service = Service(name, process, url, log_path, env or {})
    deadline = time.monotonic() + timeout
    check = ready or (lambda: http_ok(url))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with {process.returncode}:\n{service.log_tail()}")
        if check():
            return service
        time.sleep(0.05)
    service.stop()
    raise ServiceError(f"{name} not ready after {timeout:.0f} s:\n{service.log_tail()}")


def http_ok(url: str) -> bool:
    """True when `url` answers at all (any HTTP status counts as up)."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False

