"""Where the receiver's CPU goes, per delivery, step by step, under bench/ingest.py's load.

    .venv/bin/python bench/ingest_profile.py [--duration 12] [--rounds 3]

Starts, like bench/ingest.py, a private Redis, the receiver and the floor under the web process's gunicorn
command line (`bot.cli.gunicorn_argv`: 2 workers × 4 threads, the buffering worker) — but with the apps of
bench/probes.py: the same apps, each step of a delivery wrapped in a probe reading the thread's CPU clock. wrk
sends the bench's deliveries (distinct, signed ~7 KB `issue_comment`s carrying `/train toy`, each queued), floor
and receiver alternating in rounds. For each, per delivery:

  - each probed step's own CPU time (exclusive: a step's callees are their own lines);
  - the web workers' whole CPU time (/proc: every thread, user + system) less the probed WSGI app: the server
    around the app (uvicorn's asyncio loop, h11's HTTP parsing, the hand-off to the app's thread and back,
    the GIL passed between threads), measured, not estimated;
  - the probes' own cost (calibrated here: a probed no-op against a bare call) — it is inside the figures
    above, so it is shown and subtracted;
  - Redis's CPU (its own process, not the web's).

The lines add up to the measured web CPU per delivery by construction; what the table tells is how it splits.
Not part of `make bench` (the probes cost CPU of their own); it writes bench/results/ingest_profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack and the bot, from the repository root

from bench import harness  # noqa: E402
from bench.harness import BENCH, ROOT, cpu_seconds, worker_pids  # noqa: E402
from bench.ingest import SECRET, THREADS, WORKERS, Deliveries, Load  # noqa: E402
from bench.probes import Probes  # noqa: E402
from bot.cli import gunicorn_argv  # noqa: E402
from devstack.processes import Service, free_port, is_ready, start_process  # noqa: E402
from devstack.redis import start_redis  # noqa: E402

SERVER = "server around the app: uvicorn loop, h11, thread hand-off, GIL (workers' CPU − probed app)"
PROBES_COST = "the probes themselves (calibrated; inside the lines above)"


def start_probed(workdir: Path, name: str, app: str, env: dict[str, str]) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = gunicorn_argv("127.0.0.1", port, WORKERS, THREADS, app=app)
    return start_process(
        name,
        argv,
        workdir=workdir,
        url=url,
        env={**env, "PYTHONPATH": str(BENCH)},
        cwd=ROOT,
        ready=lambda: is_ready(url + "/healthz"),
        timeout=60,
    )


def probe_totals(service: Service) -> dict[int, dict]:
    """Every worker's probe totals: asked on fresh connections until each worker has answered."""
    pids = set(worker_pids(service.process.pid))
    seen: dict[int, dict] = {}
    for _ in range(200):
        with urllib.request.urlopen(service.url + "/_probes", timeout=5) as r:
            totals = json.loads(r.read())
        seen[totals["pid"]] = totals
        if pids <= seen.keys():
            return seen
    raise RuntimeError(f"workers {sorted(pids - seen.keys())} never answered /_probes")


def reading(service: Service) -> tuple[dict[str, float], dict[str, int], float]:
    """(seconds per step, calls per step, workers' CPU seconds), summed over the workers."""
    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}
    for totals in probe_totals(service).values():
        for step, value in totals["seconds"].items():
            seconds[step] = seconds.get(step, 0.0) + value
        for step, value in totals["calls"].items():
            calls[step] = calls.get(step, 0) + value
    return seconds, calls, cpu_seconds(worker_pids(service.process.pid))


def probe_cost(n: int = 200_000) -> float:
    """CPU seconds one probe adds around a call (this process; the workers run the same code)."""
    probes = Probes()

    def nothing() -> None:
        return None

    probed = probes.wrap("x", nothing)
    best = []
    for _ in range(5):
        t0 = time.thread_time()
        for _ in range(n):
            nothing()
        t1 = time.thread_time()
        for _ in range(n):
            probed()
        t2 = time.thread_time()
        best.append(((t2 - t1) - (t1 - t0)) / n)
    return min(best)


class Profile:
    """Step totals of one server over its measurements."""

    def __init__(self, name: str):
        self.name = name
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.cpu = self.redis_cpu = 0.0
        self.requests = 0
        self.statuses: dict[int, int] = {}

    def add(self, before: tuple, after: tuple, redis_cpu: float, result: dict) -> None:
        for step, value in after[0].items():
            self.seconds[step] = self.seconds.get(step, 0.0) + value - before[0].get(step, 0.0)
        for step, value in after[1].items():
            self.calls[step] = self.calls.get(step, 0) + value - before[1].get(step, 0)
        self.cpu += after[2] - before[2]
        self.redis_cpu += redis_cpu
        self.requests += result["requests"]
        for status, n in result["statuses"].items():
            self.statuses[status] = self.statuses.get(status, 0) + n

    def lines(self) -> list[tuple[str, float]]:
        """(step, µs per delivery); they add up to the workers' CPU per delivery."""
        n = max(1, self.requests)
        steps = [(step, 1e6 * value / n) for step, value in sorted(self.seconds.items(), key=lambda kv: -kv[1])]
        return [*steps, (SERVER, 1e6 * (self.cpu - sum(self.seconds.values())) / n)]

    def probes_cost(self, per_probe: float) -> float:
        """µs per delivery the probes added (inside the lines: each probe's cost lands partly in its step, partly
        in its caller's)."""
        return 1e6 * per_probe * sum(self.calls.values()) / max(1, self.requests)


def measure(opts, run: harness.Run) -> dict:
    env = {
        "MLOPS_BOT_CONFIG": str(ROOT / "config.toml"),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": opts.log_level,
        "PYTHONUNBUFFERED": "1",
    }
    redis_service = run.track(start_redis(run.workdir / "redis"))
    env["REDIS_URL"] = redis_service.url
    servers = {
        "floor": run.track(start_probed(run.workdir, "floor", "probes:floor_app()", env)),
        "receiver": run.track(start_probed(run.workdir, "receiver", os.environ.get("PROBE_APP", "probes:receiver_app()"), env)),
    }
    load = Load(run.workdir, Deliveries())
    harness.say(f"redis {redis_service.url}  floor {servers['floor'].url}  receiver {servers['receiver'].url}")
    profiles = {name: Profile(name) for name in servers}
    for name, service in servers.items():  # warm-up, not counted
        load.run(service.url, opts.warmup)
    for i in range(opts.rounds):
        for name, service in servers.items():
            seconds = opts.duration / opts.rounds
            pool = load.prepare(seconds)
            before = reading(service)
            redis_before = cpu_seconds([redis_service.process.pid])
            result = load.run(service.url, seconds, pool=pool)
            redis_cpu = cpu_seconds([redis_service.process.pid]) - redis_before
            after = reading(service)
            profiles[name].add(before, after, redis_cpu, result)
            harness.say(f"  {name} {i + 1}/{opts.rounds}: {result['rps']:.0f} req/s {result['statuses']}")
    return profiles


def report(profiles: dict[str, Profile], per_probe: float, opts) -> None:
    out = {}
    for name, profile in profiles.items():
        n = max(1, profile.requests)
        lines = profile.lines()
        probes = profile.probes_cost(per_probe)
        measured = 1e6 * profile.cpu / n
        print(f"\n{name}: {profile.requests:,} requests {profile.statuses}, web CPU {measured:.0f} µs per request")
        for step, us in lines:
            print(f"  {us:7.1f} µs  {step}")
        print(f"  {sum(us for _, us in lines):7.1f} µs  sum (= web CPU per request, probes included)")
        print(f"  {-probes:7.1f} µs  {PROBES_COST}: {sum(profile.calls.values()) / n:.1f} probes per request")
        print(f"  {measured - probes:7.1f} µs  web CPU per request without the probes (estimate)")
        print(f"  {1e6 * profile.redis_cpu / n:7.1f} µs  Redis server (its own process)")
        out[name] = {
            "requests": profile.requests,
            "statuses": profile.statuses,
            "web_cpu_us_per_request": round(measured, 1),
            "redis_cpu_us_per_request": round(1e6 * profile.redis_cpu / n, 1),
            "steps_us_per_request": {step: round(us, 1) for step, us in lines},
            "probes_us_per_request": round(probes, 1),
            "calls_per_request": {step: round(c / n, 3) for step, c in profile.calls.items()},
        }
    print(f"\none probe costs {per_probe * 1e6:.2f} µs (calibrated in this process)")
    harness.write_results(
        "ingest_profile",
        {"probe_us": round(per_probe * 1e6, 3), "log_level": opts.log_level, "duration_s": opts.duration, **out},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=12, help="seconds of load per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="floor/receiver alternations")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--log-level", default="WARNING", help="the workers' LOG_LEVEL (bench/ingest.py: WARNING)")
    parser.add_argument("--keep", action="store_true")
    opts = parser.parse_args()
    per_probe = probe_cost()

    def body(run: harness.Run) -> None:
        report(measure(opts, run), per_probe, opts)

    return harness.run("mlops-profile-", opts.keep, body)


if __name__ == "__main__":
    sys.exit(main())
