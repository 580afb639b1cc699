"""How fast and how cheaply the bot answers `/train toy` on a pull request, end to end.

    make bench            # or: .venv/bin/python bench/commands.py [--commands 200] [--prs 20] [--keep]

Starts, each in its own process group on free ports under one temp dir, the stack of
tests/integration/test_chatops.py's `ops` fixture: a private Redis, the sandbox forge (real git,
signed webhooks) seeded with users and the tests' tiny ML repo (tests/support/mlrepo.py, whose
steps finish at once), the sandbox workspace (really runs the tasks), the receiver under gunicorn
and a Celery worker (threads pool) with --concurrency 8, configured by tests/support/mlrepo.py's config_text.

  setup     alice pushes 23 branches over HTTP and opens 23 pull requests; each PR's own `test`
            run must be reported (status set) and the queue idle before anything is counted;
            then the forge's and the workspace's request counters are reset.
  commands  200 comments `/train toy` (10 per PR on 20 PRs, round-robin, one every 50-100 ms,
            so each PR's run supersedes its previous one as the config says) posted through the
            forge's API as alice. Latency = the run's `start_time` in the workspace (set when
            `run-now` is handled) minus the moment the comment POST returned; each run is matched
            to its comment exactly by the bot's run record in Redis (`comment_id`).
  lifecycle waits until every run was followed to its end, the queue is idle, each PR's report
            is final for its newest run, its commit status is set and the newest comment has
            👍/👎 (superseded commands end with 👀 🚀 and a cancelled run: no report of their own);
            then reads the counters: bot requests to the forge (its own user's count: the
            bench's requests are alice's), POSTs to the workspace, `runs/get` by the follower.
  polls     `/train toy --param sleep=N` for N in 2, 8, 30 on 3 more PRs at once; polls per run
            from the workspace's access log (`runs/get?run_id=`), the schedule from the follower's
            scheduled messages in Redis, and the worker log's `task.started follow_run` as a check.

Prints a table with PASS/FAIL against the targets and writes bench/results/commands.json.
Exit status is 0 even when a target is missed (this is a measurement); 2 when the run itself
failed (logs are kept), 130 when interrupted. Everything started is stopped in every case.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKER_CONCURRENCY = 8  # threads: the tasks wait on the network, not the CPU
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bot.localstack import Service, ServiceError, free_port  # noqa: E402
from bot.localstack.bot import start_web, start_worker  # noqa: E402
from bot.localstack.redis import start_redis  # noqa: E402
from bot.localstack.sandboxes import WORKSPACE_TOKEN, start_forge, start_workspace  # noqa: E402
from bot.queue import DEFAULT_QUEUE  # noqa: E402
from tests.support.mlrepo import FILES, config_text, git  # noqa: E402

RESULTS = BENCH / "results" / "commands.json"
REPO = "acme/tiny-ml"
ENV = "dev"  # the workspace environment of tests/support/mlrepo.py's config
BOT = "mlops-bot"
TOKENS = {"alice": "ghp_alice", "bob": "ghp_bob", BOT: "ghp_bot"}
SECRETS = {"GITHUB_WEBHOOK_SECRET": "bench-github-secret", "MLFLOW_WEBHOOK_SECRET": "bench-mlflow-secret",
           "DATABRICKS_WEBHOOK_SECRET": "bench-databricks-secret", "SLACK_SIGNING_SECRET": "bench-slack-secret"}
SLEEPS = (2, 8, 30)
TARGETS = {"p50_ms": 150, "p99_ms": 500, "github_per_command": 10, "databricks_writes_per_command": 3}
GITHUB_HOURLY = 5000
FINAL = {"SUCCESS", "FAILED", "TIMEDOUT", "CANCELED", "INTERNAL_ERROR", "SKIPPED", "SUCCESS_WITH_FAILURES",
         "UPSTREAM_FAILED"}
RUN_GET = re.compile(r'"GET /api/2\.[12]/jobs/runs/get\?run_id=(\d+)[ &]')


class BenchError(RuntimeError):
    """The run itself failed (not a missed target)."""


# ----------------------------------------------------------------------------------------------
# The stack: the `ops` fixture of tests/integration/test_chatops.py, as plain processes
# ----------------------------------------------------------------------------------------------

def seed_text(src: Path, web_port: int) -> str:
    return textwrap.dedent(f"""\
        [users.alice]
        token = "{TOKENS['alice']}"
        [users.bob]
        token = "{TOKENS['bob']}"
        [users."{BOT}"]
        token = "{TOKENS[BOT]}"
        type = "Bot"
        [[repos]]
        full_name = "{REPO}"
        init_from = "{src}"
        permissions = {{ alice = "write", bob = "admin", "{BOT}" = "write" }}
        [repos.webhook]
        url = "http://127.0.0.1:{web_port}/webhooks/github"
        secret = "{SECRETS['GITHUB_WEBHOOK_SECRET']}"
        """)


class Stack:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.services: list[Service] = []
        self._lock = threading.Lock()

    def _keep(self, service: Service) -> Service:
        with self._lock:
            self.services.append(service)
        return service

    def start(self) -> "Stack":
        w = self.workdir
        src = w / "tiny-ml-src"
        for name, text in FILES.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(text)
        web_port = free_port()
        seed = w / "forge.toml"
        seed.write_text(seed_text(src, web_port))
        # the three independent services start side by side (each waits for its own readiness)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = {"redis": pool.submit(lambda: self._keep(start_redis(w / "redis"))),
                       "forge": pool.submit(lambda: self._keep(start_forge(w, seed))),
                       "workspace": pool.submit(lambda: self._keep(start_workspace(w)))}
            up = {name: f.result() for name, f in futures.items()}
        self.redis, self.forge, self.workspace = up["redis"], up["forge"], up["workspace"]
        self.config = w / "config.toml"
        self.config.write_text(config_text(self.workspace.url, f"{self.forge.url}/{REPO}.git",
                                           forge_url=self.forge.url))
        env = {**SECRETS, "REDIS_URL": self.redis.url, "MLOPS_BOT_CONFIG": str(self.config),
               "SANDBOX_DATABRICKS_TOKEN": WORKSPACE_TOKEN, "SANDBOX_GITHUB_TOKEN": TOKENS[BOT],
               "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            web = pool.submit(lambda: self._keep(start_web(w, env, port=web_port)))
            worker = pool.submit(lambda: self._keep(start_worker(w, env, concurrency=WORKER_CONCURRENCY)))
            self.web, self.worker = web.result(), worker.result()
        return self

    def stop(self) -> None:
        order = ["worker", "web", "workspace", "forge", "redis"]
        for service in sorted(self.services, key=lambda s: order.index(s.name) if s.name in order else -1):
            service.stop()


# ----------------------------------------------------------------------------------------------
# Talking to the forge (as alice), the workspace and Redis
# ----------------------------------------------------------------------------------------------

class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.s = requests.Session()
        self.s.headers.update({"Authorization": f"token {token}", "Accept": "application/vnd.github+json"})

    def call(self, method: str, path: str, **kwargs):
        r = self.s.request(method, self.base + path, timeout=30, **kwargs)
        if r.status_code >= 400:
            raise BenchError(f"{method} {path} -> {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None

    def pages(self, path: str) -> list:
        out, page = [], 1
        while True:
            batch = self.call("GET", path, params={"per_page": 100, "page": page})
            out.extend(batch)
            if len(batch) < 100:
                return out
            page += 1


def wait_for(check, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def queue_idle(r: redis.Redis) -> bool:
    """Nothing queued and nothing held by the worker (kombu keeps unacked and ETA messages in `unacked`)."""
    return r.llen(DEFAULT_QUEUE) == 0 and r.hlen("unacked") == 0


def settled(r: redis.Redis, checks: int = 3, every: float = 0.3) -> bool:
    """Idle several times in a row: a message between BRPOP and `unacked` is in neither for an instant."""
    for _ in range(checks):
        if not queue_idle(r):
            return False
        time.sleep(every)
    return True


def pr_records(r: redis.Redis, pr: int) -> list[dict]:
    keys = r.zrange(f"mlops-bot:pr-runs:{REPO}#{pr}", 0, -1)
    return [json.loads(raw) for raw in r.mget(keys) if raw] if keys else []


def iso_epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def json_lines(text: str):
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    s = sorted(values)
    if not s:
        return float("nan")
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


class FollowerSchedule:
    """Samples the follower's scheduled `follow_run` messages (run_id, polls, eta) from Redis.

    The worker holds ETA messages unacked, and kombu keeps each in the `unacked` hash until it is
    acknowledged after the poll ran: sampled every 0.2 s, none of the >= 2 s delays is missed.
    """

    def __init__(self, url: str):
        self.r = redis.Redis.from_url(url)
        self.seen: dict[tuple[int, int], float] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "FollowerSchedule":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for raw in self.r.hvals("unacked"):
                    self._take(raw)
            except redis.RedisError:
                self.errors += 1
            self._stop.wait(0.2)

    def _take(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)[0]
            headers = message.get("headers") or {}
            if headers.get("task") != "follow_run" or not headers.get("eta"):
                return
            body = message["body"]
            if (message.get("properties") or {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            _, kwargs, _ = json.loads(body)
            key = (int(kwargs["run_id"]), int(kwargs.get("polls", 0)))
            self.seen.setdefault(key, iso_epoch(headers["eta"]))
        except (ValueError, KeyError, TypeError, IndexError):
            self.errors += 1

    def for_run(self, run_id: int) -> list[float]:
        """Scheduled poll times (epoch s) of one run, in order."""
        return [eta for (rid, _), eta in sorted(self.seen.items()) if rid == run_id]


# ----------------------------------------------------------------------------------------------
# The phases
# ----------------------------------------------------------------------------------------------

def open_prs(stack: Stack, alice: Api, r: redis.Redis, count: int) -> list[dict]:
    """alice pushes `count` branches over HTTP (one push) and opens a PR for each; returns them once
    every PR's own `test` run is reported and the queue is idle."""
    w = stack.workdir
    url = stack.forge.url.replace("http://", f"http://alice:{TOKENS['alice']}@") + f"/{REPO}.git"
    checkout = w / "alice-checkout"
    git(w, "clone", "-q", url, str(checkout))
    branches = [f"bench/pr-{i:02d}" for i in range(1, count + 1)]
    for name in branches:
        git(checkout, "checkout", "-q", "-B", name, "origin/main")
        (checkout / "NOTES.md").write_text(f"{name}\n")
        git(checkout, "add", "-A")
        git(checkout, "commit", "-qm", f"work on {name}")
    git(checkout, "push", "-q", "origin", *branches)
    prs = []
    for name in branches:
        d = alice.call("POST", f"/repos/{REPO}/pulls", json={"title": name, "body": "", "head": name, "base": "main"})
        prs.append({"number": d["number"], "branch": name, "sha": d["head"]["sha"]})

    def tests_reported():
        for pr in prs:
            if not any(rec.get("workflow") == "test" and rec.get("finished_at") for rec in pr_records(r, pr["number"])):
                return False
        return settled(r)
    wait_for(tests_reported, 120, "each PR's `test` run to finish")
    for pr in prs:  # the follower's last write for a `test` run is the commit status
        statuses = alice.call("GET", f"/repos/{REPO}/commits/{pr['sha']}/statuses")
        if not any(s["context"] == f"{BOT}/test" and s["state"] != "pending" for s in statuses):
            raise BenchError(f"PR #{pr['number']}: no final `{BOT}/test` status: {statuses}")
    return prs


def post_commands(alice: Api, prs: list[dict], total: int, interval: tuple[float, float], body_for,
                  rng: random.Random) -> list[dict]:
    """Round-robin over `prs`, one comment every `interval` seconds (uniform), paced by a clock
    (a slow POST eats into the next gap instead of shifting everything after it)."""
    sent = []
    next_at = time.monotonic()
    for i in range(total):
        pr = prs[i % len(prs)]
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.time()
        d = alice.call("POST", f"/repos/{REPO}/issues/{pr['number']}/comments", json={"body": body_for(i, pr)})
        t1 = time.time()
        sent.append({"i": i, "pr": pr["number"], "comment_id": d["id"], "posted_at": t1, "post_ms": (t1 - t0) * 1000})
        next_at += rng.uniform(*interval)
    return sent


def lifecycles_done(r: redis.Redis, sent: list[dict]) -> tuple[bool, dict]:
    """Every command has its run record, every run was followed to its end, nothing is queued."""
    wanted = {c["comment_id"] for c in sent}
    found: dict[int, dict] = {}
    for pr in {c["pr"] for c in sent}:
        for rec in pr_records(r, pr):
            if rec.get("comment_id") in wanted:
                found[rec["comment_id"]] = rec
    finished = sum(1 for rec in found.values() if rec.get("finished_at"))
    ok = len(found) == len(wanted) and finished == len(wanted) and settled(r)
    return ok, {"records": len(found), "finished": finished, "expected": len(wanted), "records_by_comment": found}


def verify_on_forge(bob: Api, r: redis.Redis, sent: list[dict], records: dict[int, dict], prs: list[dict]) -> dict:
    """What a person sees: per PR one report, final, for the newest run; final status; 👍/👎 on the
    comment that started the newest run; 👀 🚀 on every command."""
    problems: list[str] = []
    reactions_seen: dict[str, int] = {}
    final_reacted = 0
    by_pr: dict[int, list[dict]] = {}
    for c in sent:
        by_pr.setdefault(c["pr"], []).append(c)
    sha = {p["number"]: p["sha"] for p in prs}
    for pr, cmds in sorted(by_pr.items()):
        latest = r.get(f"mlops-bot:pr-latest:{REPO}#{pr}:train")
        latest_run = int(latest) if latest else None
        newest = max(cmds, key=lambda c: c["i"])
        newest_run = records.get(newest["comment_id"], {}).get("run_id")
        if latest_run != newest_run:
            problems.append(f"PR #{pr}: the report follows run {latest_run}, the newest command started {newest_run}")
        reports = [c for c in bob.pages(f"/repos/{REPO}/issues/{pr}/comments")
                   if c["user"]["login"] == BOT and f"<!-- {BOT}:report key=train -->" in (c["body"] or "")]
        if len(reports) != 1:
            problems.append(f"PR #{pr}: {len(reports)} train reports")
        elif not any(f"— {state}" in reports[0]["body"] for state in FINAL) or \
                f"/runs/{latest_run}" not in reports[0]["body"]:
            problems.append(f"PR #{pr}: report not final for run {latest_run}: {reports[0]['body'][:160]!r}")
        statuses = [s for s in bob.call("GET", f"/repos/{REPO}/commits/{sha[pr]}/statuses")
                    if s["context"] == f"{BOT}/train"]
        if not statuses or statuses[0]["state"] == "pending":
            problems.append(f"PR #{pr}: `{BOT}/train` status is {statuses[0]['state'] if statuses else None}")
        for c in cmds:
            got = {x["content"] for x in bob.call("GET", f"/repos/{REPO}/issues/comments/{c['comment_id']}/reactions")
                   if x["user"]["login"] == BOT}
            for content in got:
                reactions_seen[content] = reactions_seen.get(content, 0) + 1
            c["reactions"] = sorted(got)
            if not {"eyes", "rocket"} <= got:
                problems.append(f"comment {c['comment_id']} (PR #{pr}): reactions {sorted(got)}")
            run_id = records.get(c["comment_id"], {}).get("run_id")
            if run_id == latest_run:
                if got & {"+1", "-1"}:
                    final_reacted += 1
                else:
                    problems.append(f"comment {c['comment_id']} (PR #{pr}) started the reported run but has no 👍/👎")
    return {"ok": not problems, "problems": problems[:20], "problem_count": len(problems),
            "reactions_by_bot": reactions_seen, "final_reactions": final_reacted}


def run_start_times(workspace_url: str, job_ids: set[int]) -> dict[int, dict]:
    """run_id → the workspace's own view (start_time in ms is set when run-now is handled)."""
    import logging

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    logging.getLogger("databricks.sdk").setLevel(logging.ERROR)  # no host-metadata chatter about the sandbox
    w = WorkspaceClient(config=Config(host=workspace_url, token=WORKSPACE_TOKEN, auth_type="pat"))
    out = {}
    for job_id in job_ids:
        for run in w.jobs.list_runs(job_id=job_id):
            out[run.run_id] = {"start_time": run.start_time, "end_time": run.end_time,
                               "result": (run.state.result_state.value if run.state and run.state.result_state
                                          else run.state.life_cycle_state.value if run.state else "")}
    return out


def worker_events(text: str) -> list[dict]:
    return [e for e in json_lines(text) if "event" in e]


def task_timeline(worker: list[dict], web: list[dict], records: dict[int, dict]) -> dict[int, dict]:
    """comment_id → when the receiver queued the `run_command` task that started its run, when the
    worker began it and when it finished (epoch s): the run's `run.started` line names the task."""
    queued = {tid: iso_epoch(e["ts"]) for e in web if e.get("event") == "webhook.queued" for tid in e.get("task_ids", [])}
    began = {e["task_id"]: iso_epoch(e["ts"]) for e in worker
             if e.get("event") == "task.started" and e.get("task") == "run_command" and e.get("task_id")}
    ended = {e["task_id"]: iso_epoch(e["ts"]) for e in worker if e.get("event") == "task.done" and e.get("task_id")}
    run_task = {e["run_id"]: e["task_id"] for e in worker if e.get("event") == "run.started" and e.get("task_id")}
    out = {}
    for cid, rec in records.items():
        task = run_task.get(rec["run_id"])
        if task in began:
            out[cid] = {"queued": queued.get(task), "began": began[task], "done": ended.get(task)}
    return out


def worker_busy(worker: list[dict]) -> dict[str, dict]:
    """Per task name: how many ran and the seconds between task.started and task.done."""
    began = {e["task_id"]: (iso_epoch(e["ts"]), e.get("task")) for e in worker
             if e.get("event") == "task.started" and e.get("task_id")}
    out: dict[str, list[float]] = {}
    for e in worker:
        if e.get("event") == "task.done" and e.get("task_id") in began:
            t0, name = began[e["task_id"]]
            out.setdefault(name, []).append(iso_epoch(e["ts"]) - t0)
    return {name: {"tasks": len(v), "busy_s": round(sum(v), 2), "p50_ms": round(1000 * percentile(v, 50), 1),
                   "max_ms": round(1000 * max(v), 1)} for name, v in out.items()}


CLK_TCK = os.sysconf("SC_CLK_TCK")


def session_cpu(sessions: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user+sys) per service session; reaped children (the workspace's task processes,
    git) are counted apart as `<name> children`."""
    out = {name: 0.0 for name in sessions}
    out.update({f"{name} children": 0.0 for name in sessions})
    by_sid = {sid: name for name, sid in sessions.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        name = by_sid.get(int(fields[3]))
        if name:
            out[name] += (int(fields[11]) + int(fields[12])) / CLK_TCK
            out[f"{name} children"] += (int(fields[13]) + int(fields[14])) / CLK_TCK
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])
    return total - values[3] - values[4], total


def per_command(counts: dict, n: int) -> dict[str, float]:
    return {k: round(v / n, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def poll_phase(stack: Stack, alice: Api, r: redis.Redis, prs: list[dict]) -> dict:
    """One `/train toy --param sleep=N` per extra PR, all at once; polls per run and their schedule."""
    ws_log, worker_log = stack.workspace.log_path, stack.worker.log_path
    ws_off, worker_off = ws_log.stat().st_size, worker_log.stat().st_size
    schedule = FollowerSchedule(stack.redis.url).start()
    try:
        sent = post_commands(alice, prs, len(SLEEPS), (0.0, 0.0),
                             lambda i, pr: f"/train toy --param sleep={SLEEPS[i]}", random.Random(0))
        ok, info = wait_for(lambda: (lambda res: res if res[0] else None)(lifecycles_done(r, sent)),
                            max(SLEEPS) * 1.5 + 60, "the sleep runs to be followed to their end", every=0.5)
    finally:
        schedule.stop()
    records = info["records_by_comment"]
    ws_text, worker_text = read_from(ws_log, ws_off), read_from(worker_log, worker_off)
    gets: dict[int, int] = {}
    for m in RUN_GET.finditer(ws_text):
        gets[int(m.group(1))] = gets.get(int(m.group(1)), 0) + 1
    follow_started = sum(1 for e in worker_events(worker_text)
                         if e.get("event") == "task.started" and e.get("task") == "follow_run")
    times = run_start_times(stack.workspace.url, {rec["job_id"] for rec in records.values()})
    rows = []
    for i, c in enumerate(sent):
        rec = records[c["comment_id"]]
        run = times.get(rec["run_id"], {})
        start_s = (run.get("start_time") or 0) / 1000
        length = ((run.get("end_time") or 0) - (run.get("start_time") or 0)) / 1000
        etas = schedule.for_run(rec["run_id"])
        # the starter reads the run once (for its page URL); every other runs/get is a poll
        polls_ws = gets.get(rec["run_id"], 0) - 1 if ws_text else None
        rows.append({"sleep_s": SLEEPS[i], "run_id": rec["run_id"], "result": run.get("result"),
                     "run_length_s": round(length, 2), "polls": polls_ws,
                     "polls_scheduled": len(etas),
                     "poll_at_s": [round(t - start_s, 2) for t in etas]})
    return {"runs": rows, "follow_run_started_in_worker_log": follow_started,
            "workspace_log_has_run_ids": bool(gets), "schedule_sample_errors": schedule.errors}


def log_growth_verdict(rows: list[dict]) -> dict:
    """Polls grow no faster than log(length) iff, past a floor, each wait is at least a fixed share c
    of the time the run has taken: then a run of length L needs <= k + ln(L) / ln(1 + c) polls."""
    ratios = []
    for row in rows:
        t = row["poll_at_s"]
        for a, b in zip(t, t[1:]):
            if a >= 8.0:  # past the 2 s floor (0.25 × 8 s = 2 s)
                ratios.append((b - a) / a)
    counts = [(row["run_length_s"], row["polls"] if row["polls"] is not None else row["polls_scheduled"])
              for row in rows]
    counts.sort()
    out: dict = {"counts": counts}
    if ratios:
        c = min(ratios)
        out["wait_share_of_elapsed_min"] = round(c, 3)
        out["wait_share_of_elapsed_median"] = round(sorted(ratios)[len(ratios) // 2], 3)
        # extrapolate from the longest run with the smallest share seen
        l_max, p_max = counts[-1]
        if c > 0:
            for label, length in (("1 h", 3600), ("1 day", 86400)):
                out[f"polls_extrapolated_{label.replace(' ', '_')}"] = \
                    math.ceil(p_max + math.log(length / max(l_max, 1)) / math.log(1 + c))
        out["ok"] = c >= 0.1
        out["why"] = (f"past 8 s every wait was >= {c:.2f} x the run's elapsed time (geometric spacing: "
                      f"polls ~ ln(length)/ln(1+{c:.2f}))") if out["ok"] else \
            f"a wait after 8 s was only {c:.2f} x the elapsed time: spacing is not geometric"
    else:
        # no schedule sampled: fall back to the counts, which must grow sub-linearly
        (l1, p1), (l2, p2) = counts[0], counts[-1]
        linear = p1 * l2 / max(l1, 0.1)
        out["ok"] = p2 <= max(p1 + 1, 0.5 * linear)
        out["why"] = f"schedule not sampled; {p2} polls at {l2:.0f} s vs {linear:.0f} if linear from {l1:.0f} s"
    return out


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200, help="`/train toy` comments to post")
    parser.add_argument("--prs", type=int, default=20, help="pull requests they are spread over (round-robin)")
    parser.add_argument("--min-gap", type=float, default=0.3, help="seconds between comments, lower bound (~2.5 commands/s: what 2 cores carry while the sandbox also runs every task)")
    parser.add_argument("--max-gap", type=float, default=0.5, help="seconds between comments, upper bound")
    parser.add_argument("--no-polls", action="store_true", help="skip the sleep=2/8/30 poll measurement")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    opts = parser.parse_args()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    started = time.monotonic()
    busy0 = machine_cpu()
    time.sleep(1)
    busy1 = machine_cpu()
    idle_busy_pct = 100 * (busy1[0] - busy0[0]) / max(1e-9, busy1[1] - busy0[1])
    if idle_busy_pct > 15:
        print(f"warning: the machine is {idle_busy_pct:.0f} % busy before the bench starts; other processes share "
              "the cores, so latencies will be higher", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="mlops-bench-commands-"))
    stack = Stack(workdir)
    failed = interrupted = False
    try:
        say(f"starting the stack under {workdir} ...")
        stack.start()
        t_stack = time.monotonic() - started
        say(f"  redis {stack.redis.url}  forge {stack.forge.url}  workspace {stack.workspace.url}  "
            f"web {stack.web.url}  worker --concurrency {WORKER_CONCURRENCY}  ({t_stack:.1f} s)")
        r = redis.Redis.from_url(stack.redis.url)
        alice, bob = Api(stack.forge.url, TOKENS["alice"]), Api(stack.forge.url, TOKENS["bob"])
        extra = 0 if opts.no_polls else len(SLEEPS)
        t0 = time.monotonic()
        prs = open_prs(stack, alice, r, opts.prs + extra)
        say(f"  {len(prs)} PRs open, each PR's `test` run reported ({time.monotonic() - t0:.1f} s)")
        main_prs, poll_prs = prs[:opts.prs], prs[opts.prs:]

        # --- the measurement ---------------------------------------------------------------------
        requests.post(f"{stack.forge.url}/sandbox/requests/reset", timeout=10).raise_for_status()
        requests.post(f"{stack.workspace.url}/sandbox/requests/reset", timeout=10).raise_for_status()
        ws_off, worker_off = stack.workspace.log_path.stat().st_size, stack.worker.log_path.stat().st_size
        web_off = stack.web.log_path.stat().st_size
        sessions = {s.name: s.process.pid for s in stack.services}
        cpu0, machine0 = session_cpu(sessions), machine_cpu()
        t0 = time.monotonic()
        sent = post_commands(alice, main_prs, opts.commands, (opts.min_gap, opts.max_gap),
                             lambda i, pr: "/train toy", random.Random(opts.seed))
        t_post = time.monotonic() - t0
        say(f"  {len(sent)} comments posted in {t_post:.1f} s ({len(sent) / t_post:.1f}/s); waiting for every "
            f"lifecycle ...")
        _, info = wait_for(lambda: (lambda res: res if res[0] else None)(lifecycles_done(r, sent)), 300,
                           "every command's run to be followed to its end", every=0.5)
        t_drain = time.monotonic() - t0
        cpu1, machine1 = session_cpu(sessions), machine_cpu()
        forge_counts = requests.get(f"{stack.forge.url}/sandbox/requests", timeout=10).json()
        ws_counts = requests.get(f"{stack.workspace.url}/sandbox/requests", timeout=10).json()
        records = info["records_by_comment"]
        say(f"  all {len(records)} runs followed to their end, queue idle ({t_drain:.1f} s after the first comment)")
        ws_text = read_from(stack.workspace.log_path, ws_off)
        worker_text = read_from(stack.worker.log_path, worker_off)
        checks = verify_on_forge(bob, r, sent, records, main_prs)
        times = run_start_times(stack.workspace.url, {rec["job_id"] for rec in records.values()})

        # latency: workspace start_time (run-now handled) - comment POST returned
        events = worker_events(worker_text)
        web_events = worker_events(read_from(stack.web.log_path, web_off))
        timeline = task_timeline(events, web_events, records)
        lat, missing = [], []
        split: dict[str, list[float]] = {"delivered_and_queued": [], "waiting_in_queue": [], "in_task_before_run_now": [],
                                         "run_command_task": []}
        for c in sent:
            rec = records.get(c["comment_id"])
            run = times.get(rec["run_id"]) if rec else None
            if not run or not run.get("start_time"):
                missing.append(c["comment_id"])
                continue
            c["run_id"] = rec["run_id"]
            c["latency_ms"] = run["start_time"] - c["posted_at"] * 1000
            c["run_result"] = run["result"]
            lat.append(c["latency_ms"])
            tl = timeline.get(c["comment_id"])
            if tl:
                if tl["queued"]:
                    # log times are truncated to the millisecond: clamp the -1 ms that gives
                    split["delivered_and_queued"].append(max(0.0, (tl["queued"] - c["posted_at"]) * 1000))
                    split["waiting_in_queue"].append((tl["began"] - tl["queued"]) * 1000)
                split["in_task_before_run_now"].append(run["start_time"] - tl["began"] * 1000)
                if tl["done"]:
                    split["run_command_task"].append((tl["done"] - tl["began"]) * 1000)

        n = len(sent)
        bot_routes = forge_counts.get("by_user_route", {}).get(BOT, {})
        gh_total = forge_counts.get("by_user", {}).get(BOT, 0)
        dbx_writes = {k: v for k, v in ws_counts.items() if k.startswith("POST ")}
        dbx_reads = {k: v for k, v in ws_counts.items() if not k.startswith("POST ")}
        run_gets = sum(v for k, v in ws_counts.items() if k.endswith("/jobs/runs/get"))
        run_ids = {rec["run_id"] for rec in records.values()}
        per_run_gets = {}
        for m in RUN_GET.finditer(ws_text):
            rid = int(m.group(1))
            if rid in run_ids:
                per_run_gets[rid] = per_run_gets.get(rid, 0) + 1
        # the starter reads each run once (its page URL); the rest are the follower's polls
        follower_polls = (sum(per_run_gets.values()) - len(run_ids)) if per_run_gets else run_gets - len(run_ids)
        follow_started = sum(1 for e in events if e.get("event") == "task.started" and e.get("task") == "follow_run")
        results_by_state: dict[str, int] = {}
        for c in sent:
            results_by_state[c.get("run_result", "?")] = results_by_state.get(c.get("run_result", "?"), 0) + 1
        measured = {
            "commands": n, "prs": len(main_prs), "posting_seconds": round(t_post, 2),
            "rate_per_s": round(n / t_post, 2), "lifecycle_seconds": round(t_drain, 2),
            "latency_ms": summary(lat), "matched": len(lat), "unmatched_comment_ids": missing,
            "latency_split_ms": {k: summary(v) for k, v in split.items()},
            "worker": worker_stats(worker_busy(events), n, t_drain),
            "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0},
            "machine_busy_before_pct": round(idle_busy_pct, 1),
            "machine_busy_pct": round(100 * (machine1[0] - machine0[0]) / max(1e-9, machine1[1] - machine0[1]), 1),
            "comment_post_ms": summary([c["post_ms"] for c in sent]),
            "github": {"bot_requests": gh_total, "per_command": round(gh_total / n, 3),
                       "by_route_per_command": per_command(bot_routes, n),
                       "by_route": bot_routes, "all_users": forge_counts.get("by_user", {})},
            "databricks": {"writes": sum(dbx_writes.values()), "writes_per_command": round(sum(dbx_writes.values()) / n, 3),
                           "writes_by_route_per_command": per_command(dbx_writes, n),
                           "reads_by_route_per_command": per_command(dbx_reads, n),
                           "requests_per_command": round(sum(ws_counts.values()) / n, 3),
                           "runs_get": run_gets, "follower_polls": follower_polls,
                           "follower_polls_per_command": round(follower_polls / n, 3),
                           "follow_run_tasks_started": follow_started,
                           "per_run_counts_from_access_log": bool(per_run_gets)},
            "run_results": results_by_state, "forge_checks": checks,
            "per_command": [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in c.items() if k != "posted_at"}
                            for c in sent],
        }
        say(f"  forge checks: {'ok' if checks['ok'] else str(checks['problem_count']) + ' problems'}")

        polls = None
        if poll_prs:
            say(f"  poll growth: /train toy --param sleep={{{','.join(map(str, SLEEPS))}}} on PRs "
                f"{', '.join('#' + str(p['number']) for p in poll_prs)} at once ...")
            t0 = time.monotonic()
            polls = poll_phase(stack, alice, r, poll_prs)
            polls["verdict"] = log_growth_verdict(polls["runs"])
            polls["seconds"] = round(time.monotonic() - t0, 1)
        report(opts, measured, polls, time.monotonic() - started, t_stack)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the services", file=sys.stderr)
        interrupted = True
    except (BenchError, ServiceError, RuntimeError, redis.RedisError, OSError, requests.RequestException,
            subprocess.SubprocessError) as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        for service in stack.services:
            print(f"--- {service.name} log tail ({service.log_path}):\n{service.log_tail(15)}", file=sys.stderr)
        failed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if opts.keep or failed:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 130 if interrupted else 2 if failed else 0


def worker_stats(busy: dict[str, dict], n: int, seconds: float) -> dict:
    """Worker-seconds per command (its run_command plus its share of follow_run) and what 2 processes
    can carry at that cost."""
    total = sum(b["busy_s"] for b in busy.values())
    per = total / n if n else 0.0
    return {"tasks": busy, "busy_seconds": round(total, 1), "worker_seconds_per_command": round(per, 3),
            "capacity_commands_per_s": round(2 / per, 2) if per else None,
            "utilisation_pct": round(100 * total / (2 * seconds), 1) if seconds else None}


def say(text: str) -> None:
    print(text, flush=True)


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": round(min(values), 1), "p50": round(percentile(values, 50), 1),
            "p90": round(percentile(values, 90), 1), "p99": round(percentile(values, 99), 1),
            "max": round(max(values), 1), "mean": round(sum(values) / len(values), 1)}


def report(opts, m: dict, polls: dict | None, elapsed: float, t_stack: float) -> None:
    lat = m["latency_ms"]
    gh, dbx = m["github"], m["databricks"]
    complete = m["matched"] == m["commands"] and m["forge_checks"]["ok"]
    verdicts = {
        "p50_ms": complete and lat.get("p50", math.inf) <= TARGETS["p50_ms"],
        "p99_ms": complete and lat.get("p99", math.inf) <= TARGETS["p99_ms"],
        "github_per_command": gh["per_command"] <= TARGETS["github_per_command"],
        "databricks_writes_per_command": dbx["writes_per_command"] <= TARGETS["databricks_writes_per_command"],
        "lifecycles_complete": complete,
    }
    if polls is not None:
        verdicts["polls_log_growth"] = bool(polls["verdict"]["ok"])

    def mark(key: str) -> str:
        return "PASS" if verdicts[key] else "FAIL"

    split, wk = m["latency_split_ms"], m["worker"]
    nan = float("nan")

    def p50_p99(d: dict) -> str:
        return f"{d.get('p50', nan):.0f} / {d.get('p99', nan):.0f} ms"

    rows = [
        (f"comment -> run-now p50 ({m['matched']}/{m['commands']} matched)", f"{lat.get('p50', nan):.0f} ms",
         f"<= {TARGETS['p50_ms']} ms", mark("p50_ms")),
        ("comment -> run-now p99", f"{lat.get('p99', nan):.0f} ms", f"<= {TARGETS['p99_ms']} ms", mark("p99_ms")),
        ("  p90 / max", f"{lat.get('p90', nan):.0f} / {lat.get('max', nan):.0f} ms", "", ""),
        ("  webhook delivered + queued, p50 / p99", p50_p99(split["delivered_and_queued"]), "", ""),
        ("  waiting in the queue, p50 / p99", p50_p99(split["waiting_in_queue"]), "", ""),
        ("  in the task until run-now, p50 / p99", p50_p99(split["in_task_before_run_now"]), "", ""),
        ("  whole run_command task, p50 / p99", p50_p99(split["run_command_task"]), "", ""),
        ("  worker-seconds per command (all tasks)",
         f"{wk['worker_seconds_per_command']:.2f} s", "", ""),
        ("  => 2 worker processes carry",
         f"{wk['capacity_commands_per_s'] or nan:.1f} /s", f"{m['rate_per_s']:.1f}/s in", ""),
        ("  machine busy during the commands (before)",
         f"{m['machine_busy_pct']:.0f} % ({m['machine_busy_before_pct']:.0f} %)", "", ""),
        ("GitHub requests per command", f"{gh['per_command']:.2f}", f"<= {TARGETS['github_per_command']}",
         mark("github_per_command")),
        ("Databricks writes per command", f"{dbx['writes_per_command']:.2f}",
         f"<= {TARGETS['databricks_writes_per_command']}", mark("databricks_writes_per_command")),
        ("  Databricks requests per command (all)", f"{dbx['requests_per_command']:.2f}", "", ""),
        ("  follower polls (runs/get) per command", f"{dbx['follower_polls_per_command']:.2f}", "", ""),
        ("lifecycles complete (report, status, reactions)",
         f"{m['matched']}/{m['commands']}, {m['forge_checks']['problem_count']} problems", "all",
         mark("lifecycles_complete")),
    ]
    if polls is not None:
        for row in polls["runs"]:
            rows.append((f"follow_run polls, sleep={row['sleep_s']} (run {row['run_length_s']:.1f} s)",
                         f"{row['polls']}", "", ""))
        v = polls["verdict"]
        rows.append(("polls grow no faster than log(length)",
                     f"wait >= {v['wait_share_of_elapsed_min']:.2f} x elapsed" if "wait_share_of_elapsed_min" in v
                     else "counts only", "geometric", mark("polls_log_growth")))
        if "polls_extrapolated_1_h" in v:
            rows.append(("  polls extrapolated: 1 h / 1 day run",
                         f"{v['polls_extrapolated_1_h']} / {v['polls_extrapolated_1_day']}", "", ""))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    twidth = max(len(r[2]) for r in rows)
    print()
    print(f"mlops-bot commands: {m['commands']} x `/train toy` on {m['prs']} PRs at {m['rate_per_s']:.1f}/s, "
          f"worker --concurrency {WORKER_CONCURRENCY}, {os.cpu_count()} CPUs, {elapsed:.0f} s (stack up in {t_stack:.0f} s)")
    for name, value, target, verdict in rows:
        print(f"  {name:<{width}}  {value:>{vwidth}}  {target:>{twidth}}  {verdict}")
    if polls is not None:
        for row in polls["runs"]:
            print(f"  polls of the sleep={row['sleep_s']} run at " + ", ".join(f"{t:.1f}" for t in row["poll_at_s"])
                  + " s after run-now")
        print(f"  ({polls['follow_run_started_in_worker_log']} follow_run tasks started in the worker log during "
              f"that phase; {sum(r['polls'] or 0 for r in polls['runs'])} polls counted in the workspace log)")
    print("  CPU seconds during the commands: " + ", ".join(f"{k} {v:.1f}" for k, v in m["cpu_seconds"].items()
                                                            if v >= 0.05)
          + " (`children`: processes they ran and reaped, e.g. the workspace's tasks and git)")
    hourly = math.floor(GITHUB_HOURLY / gh["per_command"]) if gh["per_command"] else 0
    print(f"GitHub allows an installation {GITHUB_HOURLY:,} requests an hour: that carries {hourly:,} commands an hour "
          f"(at {gh['per_command']:.2f} requests per command)")
    print("  bot's GitHub requests per command by route: "
          + ", ".join(f"{k} {v:.2f}" for k, v in gh["by_route_per_command"].items()))
    print("  Databricks per command: writes " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                          dbx["writes_by_route_per_command"].items())
          + "; reads " + ", ".join(f"{k} {v:.2f}" for k, v in dbx["reads_by_route_per_command"].items()))
    print(f"  run results: {m['run_results']}  reactions by the bot: {m['forge_checks']['reactions_by_bot']}")
    for problem in m["forge_checks"]["problems"][:5]:
        print(f"  problem: {problem}")
    missed = [k for k, ok in verdicts.items() if not ok]
    print("all targets met" if not missed else f"MISSED: {', '.join(missed)}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "setup": {"commands": m["commands"], "prs": m["prs"], "gap_s": [opts.min_gap, opts.max_gap],
                  "worker_concurrency": WORKER_CONCURRENCY, "web": "gunicorn gthread 1x4",
                  "latency": "workspace run start_time (set in run-now) - comment POST returned"},
        **{k: v for k, v in m.items() if k != "forge_checks"},
        "forge_checks": m["forge_checks"],
        "github_hourly_budget": GITHUB_HOURLY, "commands_per_hour_on_budget": hourly,
        "polls": polls, "targets": TARGETS, "pass": verdicts, "missed": missed, "elapsed_s": round(elapsed, 1),
    }, indent=2, default=str) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
