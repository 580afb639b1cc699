"""What every benchmark shares: the run's life cycle, CPU accounting from /proc, how busy the machine is,
the table and the results file. Each benchmark keeps only what it measures.

The processes come from devstack's named setups, as in the demo and the tests.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from devstack import ROOT
from devstack.processes import Service, ServiceError
from devstack.setups import Setup
from devstack.waiting import TimedOut

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BUSY_WARNING_PCT = 15


class BenchError(RuntimeError):
    """The run itself failed (not a missed target)."""


# --- CPU accounting ---------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): field 3 of proc(5) is [0]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (a process that is gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def session_cpu(sessions: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user+sys) per process session (name → session id, the service's pid); reaped
    children (a sandbox's task processes, git) are counted apart as `<name> children`."""
    out = {name: 0.0 for name in sessions}
    out.update({f"{name} children": 0.0 for name in sessions})
    by_sid = {sid: name for name, sid in sessions.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat.parent.name)
        except (OSError, IndexError):
            continue
        name = by_sid.get(int(fields[3]))
        if name:
            out[name] += (int(fields[11]) + int(fields[12])) / CLK_TCK
            out[f"{name} children"] += (int(fields[13]) + int(fields[14])) / CLK_TCK
    return out


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (e.g. the load generator)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_pids(master: int) -> list[int]:
    """The children of a process (gunicorn's workers under its master)."""
    pids = []
    for task in Path(f"/proc/{master}/task").glob("*"):
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(set(pids))


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- how busy the machine is ------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def busy_pct(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Share of the machine's CPU time that was busy between two `machine_busy()` readings."""
    return 100 * (after[0] - before[0]) / max(1e-9, after[1] - before[1])


def busy_before_start(consequence: str) -> float:
    """How busy the machine is over one second before anything starts; warns when others share the cores."""
    before = machine_busy()
    time.sleep(1)
    pct = busy_pct(before, machine_busy())
    if pct > BUSY_WARNING_PCT:
        print(
            f"warning: the machine is {pct:.0f} % busy before the bench starts; other processes share the cores, "
            f"so {consequence}",
            file=sys.stderr,
        )
    return pct


# --- output -----------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, flush=True)


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """(figure, value, target, verdict) rows under a title line, columns as wide as their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print()
    print(title)
    for name, value, target, verdict in rows:
        print(f"  {name:<{widths[0]}}  {value:>{widths[1]}}  {target:>{widths[2]}}  {verdict}".rstrip())


def write_results(name: str, figures: dict) -> Path:
    """bench/results/<name>.json: when, on what machine, and the figures."""
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    path.write_text(json.dumps({**header, **figures}, indent=2, default=str) + "\n")
    print(f"written {path.relative_to(ROOT)}")
    return path


# --- the run's life cycle ---------------------------------------------------------------------


class Run:
    """One benchmark run: its temp dir and everything it started (stopped in every case)."""

    def __init__(self, prefix: str):
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
        self.started: list[Setup | Service] = []

    def track(self, started: Setup | Service) -> Setup | Service:
        self.started.append(started)
        return started

    def services(self) -> list[Service]:
        return [s for x in self.started for s in (x.services.values() if isinstance(x, Setup) else [x])]

    def stop(self) -> None:
        for x in reversed(self.started):
            x.stop()


FAILURES = (BenchError, ServiceError, TimedOut, RuntimeError, redis.RedisError, OSError, subprocess.SubprocessError)


def run(prefix: str, keep: bool, body: Callable[[Run], None], failures: tuple[type[Exception], ...] = ()) -> int:
    """Run `body` and clean up: 0 when it measured (even with targets missed), 2 when the run itself
    failed (logs are kept), 130 when interrupted."""

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    current = Run(prefix)
    failed = interrupted = False
    try:
        body(current)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the services", file=sys.stderr)
        interrupted = True
    except (*FAILURES, *failures) as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        for service in current.services():
            print(f"--- {service.name} log tail ({service.log_path}):\n{service.log_tail(15)}", file=sys.stderr)
        failed = True
    finally:
        _stop_without_interruption(current)
        if keep or failed:
            print(f"logs kept in {current.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(current.workdir, ignore_errors=True)
    return 130 if interrupted else 2 if failed else 0


def _stop_without_interruption(current: Run) -> None:
    # a second Ctrl-C must not leave processes behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    current.stop()
    signal.signal(signal.SIGINT, signal.default_int_handler)
