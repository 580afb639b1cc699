"""Where the receiver's CPU goes, per delivery, step by step, under bench/ingest.py's load.

    .venv/bin/python bench/ingest_profile.py [--duration 12] [--rounds 3]

Starts, like bench/ingest.py, a private Redis, the receiver and the floor under the web process's gunicorn
command line (`bot.cli.gunicorn_argv`: 2 workers × 4 threads, the buffering worker) — but with the apps of
bench/probes.py: the same apps, each step of a delivery wrapped in a probe reading the thread's CPU clock. wrk
sends the bench's deliveries (distinct, signed ~7 KB `issue_comment`s carrying `/train toy`, each queued), floor
and receiver alternating in rounds. For each, per delivery:

  - each probed step's own CPU time (exclusive: a step's probed callees are their own lines), garbage collections
    included as a step of their own;
  - the server's share, measured, not estimated: the workers' whole CPU time (/proc: every thread, user + system)
    split into uvicorn's event-loop thread (the worker's main thread: accept, h11's HTTP parsing, asyncio, the
    answer's bytes out) and the app threads' time outside the probed app (the hand-off to the app's thread and
    back, the GIL passed between threads);
  - the probes' own cost, calibrated here (a probed no-op inside a probed loop: what a probe adds to its step and
    to its caller) and taken out of each line;
  - Redis's CPU (its own process, not the web's).

The lines add up to the workers' measured CPU per delivery less the probes' cost; what the table tells is how it
splits. Not part of `make bench` (the probes cost CPU of their own); it writes bench/results/ingest_profile.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack and the bot, from the repository root

from bench import harness  # noqa: E402
from bench.harness import BENCH, CLK_TCK, ROOT, cpu_seconds, worker_pids  # noqa: E402
from bench.ingest import SECRET, THREADS, WORKERS, Deliveries, Load  # noqa: E402
from bench.probes import OUTSIDE, calibrate  # noqa: E402
from bot.cli import gunicorn_argv  # noqa: E402
from devstack.processes import Service, free_port, is_ready, start_process  # noqa: E402
from devstack.redis import start_redis  # noqa: E402

LOOP = "server: uvicorn's event loop thread (accept, h11 parsing, asyncio, the answer's bytes out)"
HANDOFF = "server: the app's threads outside the app (uvicorn's WSGI hand-off and back, thread pool, GIL)"
PROBES_COST = "the probes' own cost, taken out of the lines above (calibrated)"


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


def reading(service: Service) -> tuple[dict, dict, dict, float]:
    """(seconds, calls and nested probed calls per step; the workers' CPU seconds), summed over the workers."""
    sums: tuple[dict, dict, dict] = ({}, {}, {})
    for totals in probe_totals(service).values():
        for part, key in zip(sums, ("seconds", "calls", "nested"), strict=True):
            for step, value in totals[key].items():
                part[step] = part.get(step, 0) + value
    pids = worker_pids(service.process.pid)
    return (*sums, cpu_seconds(pids), loop_thread_seconds(pids))


def loop_thread_seconds(pids: list[int]) -> float:
    """CPU seconds of the workers' main threads: uvicorn's event loop (the app runs in the other threads)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return total


class Profile:
    """Step totals of one server over its measurements."""

    def __init__(self, name: str):
        self.name = name
        self.parts: tuple[dict, dict, dict] = ({}, {}, {})  # seconds, calls, nested calls per step
        self.cpu = self.loop_cpu = self.redis_cpu = 0.0
        self.requests = 0
        self.statuses: dict[int, int] = {}

    def add(self, before: tuple, after: tuple, redis_cpu: float, result: dict) -> None:
        for part, old, new in zip(self.parts, before[:3], after[:3], strict=True):
            for step, value in new.items():
                part[step] = part.get(step, 0) + value - old.get(step, 0)
        self.cpu += after[3] - before[3]
        self.loop_cpu += after[4] - before[4]
        self.redis_cpu += redis_cpu
        self.requests += result["requests"]
        for status, n in result["statuses"].items():
            self.statuses[status] = self.statuses.get(status, 0) + n

    def lines(self, inside: float, outside: float) -> list[tuple[str, float]]:
        """(step, µs per delivery) with the probes' own cost taken out of each line (`probes.calibrate`); they add
        up to the workers' CPU per delivery less the probes'."""
        seconds, calls, nested = self.parts
        n = max(1, self.requests)
        steps = {
            step: value - calls.get(step, 0) * inside - nested.get(step, 0) * outside for step, value in seconds.items()
        }
        app_threads = self.cpu - self.loop_cpu - sum(seconds.values()) - nested.get(OUTSIDE, 0) * outside
        ordered = sorted(steps.items(), key=lambda kv: -kv[1])
        return [(step, 1e6 * value / n) for step, value in ordered] + [
            (LOOP, 1e6 * self.loop_cpu / n),
            (HANDOFF, 1e6 * app_threads / n),
        ]

    def probes_cost(self, inside: float, outside: float) -> float:
        """µs per delivery the probes added (taken out of the lines)."""
        return 1e6 * sum(self.parts[1].values()) * (inside + outside) / max(1, self.requests)


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
        "receiver": run.track(start_probed(run.workdir, "receiver", "probes:receiver_app()", env)),
    }
    load = Load(run.workdir, Deliveries())
    harness.say(f"redis {redis_service.url}  floor {servers['floor'].url}  receiver {servers['receiver'].url}")
    profiles = {name: Profile(name) for name in servers}
    for service in servers.values():  # warm-up, not counted
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


def report(profiles: dict[str, Profile], probe: tuple[float, float], opts) -> None:
    out = {}
    for name, profile in profiles.items():
        n = max(1, profile.requests)
        lines = profile.lines(*probe)
        probes = profile.probes_cost(*probe)
        measured = 1e6 * profile.cpu / n
        print(f"\n{name}: {profile.requests:,} requests {profile.statuses}, web CPU {measured:.0f} µs per request")
        for step, us in lines:
            print(f"  {us:7.1f} µs  {step}")
        print(f"  {sum(us for _, us in lines):7.1f} µs  sum: the web CPU per request without the probes")
        print(f"  {probes:7.1f} µs  {PROBES_COST}: {sum(profile.parts[1].values()) / n:.1f} probes per request")
        print(f"  {1e6 * profile.redis_cpu / n:7.1f} µs  Redis server (its own process)")
        out[name] = {
            "requests": profile.requests,
            "statuses": profile.statuses,
            "web_cpu_us_per_request": round(measured, 1),
            "redis_cpu_us_per_request": round(1e6 * profile.redis_cpu / n, 1),
            "steps_us_per_request": {step: round(us, 1) for step, us in lines},
            "probes_us_per_request": round(probes, 1),
            "calls_per_request": {step: round(c / n, 3) for step, c in profile.parts[1].items()},
        }
    print(f"\none probe costs {probe[0] * 1e6:.2f} µs in its step and {probe[1] * 1e6:.2f} µs in its caller")
    harness.write_results(
        "ingest_profile",
        {
            "probe_us": {"inside": round(probe[0] * 1e6, 3), "outside": round(probe[1] * 1e6, 3)},
            "log_level": opts.log_level,
            "duration_s": opts.duration,
            **out,
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=12, help="seconds of load per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="floor/receiver alternations")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--log-level", default="WARNING", help="the workers' LOG_LEVEL (bench/ingest.py: WARNING)")
    parser.add_argument("--keep", action="store_true")
    opts = parser.parse_args()
    probe = calibrate()

    def body(run: harness.Run) -> None:
        report(measure(opts, run), probe, opts)

    return harness.run("mlops-profile-", opts.keep, body)


if __name__ == "__main__":
    sys.exit(main())
