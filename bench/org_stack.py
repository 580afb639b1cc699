"""bench/org.py's processes and what it reads from them: the stack (devstack's starters), the stand-ins' request
counts, whether the bot's queue is settled, and beat paused while units of work are counted.

The counts are the stand-ins' own (`GET /sandbox/requests` of the forge and of each workspace): the forge's per
user (the bench's people are left out, so what remains is the bot's — its installation token and its App JWT),
the workspaces' per `METHOD /path` with ids and names folded into `{id}` and `{name}`. The bench itself never calls
a workspace while its counters run.
"""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
import requests

from bench.harness import BenchError, Run, say
from bench.org_seed import APP_KEY_ENV, DATABRICKS_TOKEN_ENV, PEOPLE, WEBHOOK_SECRET_ENV
from core import keys
from core.queue import DEFAULT_QUEUE, celery_message
from core.vocabulary import BEAT_SCHEDULE, SEND_DUE_TASKS
from devstack.bot import start_beat, start_web, start_worker
from devstack.processes import Service, free_port
from devstack.redis import start_redis
from devstack.sandboxes import WORKSPACE_TOKEN, start_forge, start_workspace
from devstack.setups import Setup
from devstack.waiting import wait_until

ENVIRONMENTS = ("dev", "staging", "prod")  # one workspace each, as an organisation keeps them apart
REGISTRY_WORKSPACE = "dev"  # Unity Catalog's metastore is shared by the workspaces: the bot reads it through this one
SECRET = "org-bench-github-secret"
WORKSPACE_SAVE_EVERY = 5.0  # seconds: tens of thousands of jobs, written to disk in batches (sandbox/common/store.py)
QUIET_SECONDS = 3.0
QUIET_TIMEOUT = 900
DUE_HORIZON = 30  # seconds: work due later than this (a long run's next poll) does not keep the queue unsettled
FORGE_READY_SECONDS = 600  # a forge importing hundreds of repositories takes a while to answer


def start_stack(
    run: Run, seed_text: Callable[[str], str], config_text: Callable[[dict[str, str]], str], app_pem: str, workers: int
) -> Setup:
    """Redis, the forge (seeded by `seed_text(web_url)`), one workspace per environment, then web, worker and beat
    configured by `config_text(urls)`: a devstack Setup, stopped by the run in every case."""
    workdir = run.workdir
    setup = Setup(workdir, lambda name, service: say(f"  {name} up {service.url}"))
    run.track(setup)
    web_port = free_port()
    seed = workdir / "forge-seed.toml"
    seed.write_text(seed_text(f"http://127.0.0.1:{web_port}"))
    starters: dict[str, Callable[[], Service]] = {
        "redis": lambda: start_redis(workdir / "redis"),
        "forge": lambda: start_forge(workdir, seed, ready_timeout=FORGE_READY_SECONDS),
    }
    for env in ENVIRONMENTS:
        starters[f"workspace-{env}"] = lambda env=env: start_workspace(
            workdir, name=f"workspace-{env}", save_every=WORKSPACE_SAVE_EVERY
        )
    _side_by_side(setup, starters)
    urls = {"web": f"http://127.0.0.1:{web_port}", "forge": setup.url("forge")}
    urls.update({env: setup.url(f"workspace-{env}") for env in ENVIRONMENTS})
    setup.config_path.write_text(config_text(urls))
    setup.env = {
        WEBHOOK_SECRET_ENV: SECRET,
        "REDIS_URL": setup.url("redis"),
        "MLOPS_BOT_CONFIG": str(setup.config_path),
        APP_KEY_ENV: app_pem,
        DATABRICKS_TOKEN_ENV: WORKSPACE_TOKEN,
        # MlflowClient(registry_uri="databricks-uc") reads the workspace from these
        "DATABRICKS_HOST": urls[REGISTRY_WORKSPACE],
        "DATABRICKS_TOKEN": WORKSPACE_TOKEN,
    }
    _side_by_side(
        setup,
        {
            "web": lambda: start_web(workdir, setup.env, port=web_port, workers=1, threads=4),
            "worker": lambda: start_worker(workdir, setup.env, concurrency=workers),
            "beat": lambda: start_beat(workdir, setup.env),
        },
    )
    return setup


def _side_by_side(setup: Setup, starters: dict[str, Callable[[], Service]]) -> None:
    """Start independent services at once: each waits for its own readiness."""
    with concurrent.futures.ThreadPoolExecutor(len(starters)) as pool:
        futures = [pool.submit(lambda n=name, s=start: setup.add(n, s())) for name, start in starters.items()]
    for future in futures:
        future.result()


# --- counting -----------------------------------------------------------------------------------------------------

_API_VERSION = re.compile(r"^\d+\.\d+$")


def fold(path: str) -> str:
    """`METHOD /path` with what varies per object folded: numbers → {id}, dotted names → {name}; files under
    /presigned/ and fs/ paths → their area."""
    method, _, url = path.partition(" ")
    parts = url.split("/")
    for area in ("presigned", "fs"):
        if area in parts:
            return f"{method} {'/'.join(parts[: parts.index(area) + 2])}/…"
    out = []
    for part in parts:
        if part.isdigit():
            out.append("{id}")
        elif "." in part and not part.startswith(".") and not _API_VERSION.match(part):
            out.append("{name}")
        else:
            out.append(part)
    return f"{method} {'/'.join(out)}"


class Counters:
    """The stand-ins' request counts: reset both, read both."""

    def __init__(self, setup: Setup):
        self.forge = setup.url("forge")
        self.workspaces = {env: setup.url(f"workspace-{env}") for env in ENVIRONMENTS}
        self.s = requests.Session()

    def reset(self) -> None:
        for url in (self.forge, *self.workspaces.values()):
            self.s.post(url + "/sandbox/requests/reset", timeout=30).raise_for_status()

    def total(self) -> int:
        """Every request the stand-ins answered since the reset, the bench's own included."""
        forge = self.s.get(self.forge + "/sandbox/requests", timeout=30).json().get("total", 0)
        return forge + sum(
            sum(self.s.get(url + "/sandbox/requests", timeout=30).json().values()) for url in self.workspaces.values()
        )

    def read(self) -> dict:
        """{"github": route → the bot's requests, "databricks": `METHOD /path` → requests (all workspaces),
        "github_304": the bot's requests GitHub would not count against its rate limit (a `304 Not Modified` answer
        to a conditional request), or None when the forge's log of exchanges no longer holds every request}."""
        forge = self.s.get(self.forge + "/sandbox/requests", timeout=30).json()
        exchanges = self.s.get(self.forge + "/sandbox/exchanges", timeout=30).json()
        not_modified = None
        if len(exchanges) == forge.get("total"):
            not_modified = sum(1 for e in exchanges if e.get("user") not in PEOPLE and e.get("status") == 304)
        github: dict[str, int] = {}
        for user, routes in forge.get("by_user_route", {}).items():
            if user in PEOPLE:
                continue
            for route, n in routes.items():
                github[route] = github.get(route, 0) + n
        databricks: dict[str, int] = {}
        for url in self.workspaces.values():
            for path, n in self.s.get(url + "/sandbox/requests", timeout=30).json().items():
                key = fold(path)
                databricks[key] = databricks.get(key, 0) + n
        return {"github": github, "databricks": databricks, "github_304": not_modified}


# --- the bot's queue ---------------------------------------------------------------------------------------------


def queue_idle(r: redis.Redis) -> bool:
    """Nothing queued, nothing held by the worker (kombu keeps unacked and ETA messages in `unacked`), nothing due
    within DUE_HORIZON."""
    soon = time.time() + DUE_HORIZON
    return r.llen(DEFAULT_QUEUE) == 0 and r.hlen("unacked") == 0 and r.zcount(keys.DUE, "-inf", soon) == 0


def settled(r: redis.Redis, checks: int = 4, every: float = 0.5) -> bool:
    """Idle several times in a row: a message between BRPOP and `unacked` is in neither for an instant."""
    for _ in range(checks):
        if not queue_idle(r):
            return False
        time.sleep(every)
    return True


def wait_quiet(r: redis.Redis, counters: Counters, timeout: float, what: str) -> float:
    """Until the queue is settled and the stand-ins answered nothing for QUIET_SECONDS: a task running while its
    message is in neither place (a long one Redis handed out again after the visibility timeout, whose first copy
    acknowledged it) still shows in the counts. Returns the seconds waited."""
    started = time.monotonic()

    def quiet() -> bool:
        if not settled(r):
            return False
        before = counters.total()
        time.sleep(QUIET_SECONDS)
        return queue_idle(r) and counters.total() == before

    wait_until(quiet, timeout=timeout, what=what, every=1.0)
    return time.monotonic() - started


def fire(r: redis.Redis, task: str, kwargs: dict | None = None) -> None:
    """One task onto the bot's queue, the message beat would send."""
    r.lpush(DEFAULT_QUEUE, celery_message(task, kwargs or {}))


class BeatPaused:
    """While units of work are counted, beat's periodic passes (polls, reconciler, redelivery, janitor) would blur
    them: beat is stopped (and what it sent before is let finish), and the bench sends beat's `send-due-tasks` at its period (follow-ups and retries due
    later than 10 s wait in the due index for it); afterwards beat starts again with its schedule file, so no
    entry runs twice."""

    def __init__(self, setup: Setup, r: redis.Redis, counters: Counters):
        self.setup, self.r, self.counters = setup, r, counters
        self.period = BEAT_SCHEDULE["send-due-tasks"][1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> BeatPaused:
        self.setup.services["beat"].stop()
        self._thread.start()
        wait_quiet(self.r, self.counters, QUIET_TIMEOUT, "the passes beat sent before it stopped")
        return self

    def _tick(self) -> None:
        while not self._stop.wait(self.period):
            fire(self.r, SEND_DUE_TASKS)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.setup.services["beat"] = start_beat(self.setup.workdir, self.setup.env)


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def check_answers(answers: dict[int, int], what: str) -> None:
    bad = {status: n for status, n in answers.items() if not 200 <= status < 300}
    if bad:
        raise BenchError(f"{what}: the receiver answered {bad}")
