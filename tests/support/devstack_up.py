"""`python -m devstack up` as a test drives it: started as a subprocess, its output read as a person reads it, stopped
with Ctrl-C (and killed, with everything it started, if it does not stop)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from github import Auth, Github

from devstack import ROOT
from devstack.setups import USERS

READY = "Ctrl-C stops everything."
START_TIMEOUT = 240  # MLflow, the bot's three processes and the stand-ins, on a busy 2-core machine


@dataclass
class Up:
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue = field(default_factory=queue.Queue)

    def read_until(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"`devstack up` did not print {text!r} in {timeout:.0f} s:\n{self.output}")
            if line is None:
                pytest.fail(f"`devstack up` exited with {self.process.wait()}:\n{self.output}")
            self.lines.append(line.rstrip("\n"))
        return self.output

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def value(self, pattern: str) -> str:
        found = re.search(pattern, self.output, re.M)
        assert found, f"no {pattern!r} in:\n{self.output}"
        return found.group(1)


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (they run in sessions of their own, so by parent, not by group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextmanager
def devstack_up(*args: str) -> Iterator[Up]:
    """`python -m devstack up ARGS`, running until the block ends (then Ctrl-C, or SIGKILL after 60 s)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Up(process)

    def pump() -> None:
        for line in process.stdout or ():
            running._queue.put(line)
        running._queue.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        running.read_until(READY, START_TIMEOUT)
        yield running
    finally:
        if process.poll() is None:  # a test failed before Ctrl-C: stop it all the same
            left = descendants(process.pid)
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                for pid in left | {process.pid}:
                    if alive(pid):
                        os.kill(pid, signal.SIGKILL)


def url(up: Up, name: str) -> str:
    """A started service's URL as `up` printed it (redis, mlflow, slack, forge, workspace, web)."""
    return up.value(rf"^\s+{name}\s+(http://\S+|redis://\S+)$")


def gh(up: Up, user: str = "bob") -> Github:
    return Github(
        base_url=url(up, "forge"), auth=Auth.Token(USERS[user]), seconds_between_requests=0, seconds_between_writes=0
    )
