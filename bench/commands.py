"""How fast and how cheaply the bot answers `/train toy` on a pull request, end to end.

    make bench            # or: .venv/bin/python bench/commands.py [--commands 200] [--prs 20] [--keep]

Starts devstack's `jobs` setup, each process in its own process group on free ports under one temp
dir: a private Redis, the sandbox forge (real git, signed webhooks) seeded with users and the tiny
ML repo of the job tests (devstack/mlrepo.py, whose steps finish at once), the sandbox workspace
(really runs the tasks), the receiver and a Celery worker (threads pool) with --concurrency 8, both
from the Procfile, configured by `mlrepo.config_text`.

  setup     alice pushes 23 branches over HTTP and opens 23 pull requests; each PR's own `test`
            run must be reported (status set) and the queue idle before anything is counted;
            then the forge's and the workspace's request counters are reset.
  commands  200 comments `/train toy` (10 per PR on 20 PRs, round-robin, one every 50-100 ms,
            so each PR's run supersedes its previous one as the config says) posted through the
            forge's API as alice. Latency = the run's `start_time` in the workspace (set when
            `run-now` is handled) minus the moment the comment POST returned; each run is matched
            to its comment exactly by the bot's run record in Redis (`comment_id`).
  lifecycle waits until every run was followed to its end, the queue is idle, each PR's report
            is final for its newest run and its commit status is set (a superseded command's run is
            cancelled and reported no more: the newer run owns the report), no command got a reply;
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
import itertools
import json
import math
import os
import random
import re
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack and the bot, from the repository root

import redis  # noqa: E402
import requests  # noqa: E402

from bench import harness  # noqa: E402
from bench.harness import BenchError, say  # noqa: E402
from bot.cli import WEB_WORKER  # noqa: E402
from core.queue import DEFAULT_QUEUE  # noqa: E402
from devstack import setups  # noqa: E402
from devstack.mlrepo import BOT, REPO, TOKENS, git  # noqa: E402
from devstack.sandboxes import WORKSPACE_TOKEN  # noqa: E402
from devstack.setups import Setup  # noqa: E402
from devstack.waiting import wait_until  # noqa: E402

WORKER_CONCURRENCY = 8  # threads: the tasks wait on the network, not the CPU
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "bench-github-secret",
    "MLFLOW_WEBHOOK_SECRET": "bench-mlflow-secret",
    "DATABRICKS_WEBHOOK_SECRET": "bench-databricks-secret",
    "SLACK_SIGNING_SECRET": "bench-slack-secret",
}
SLEEPS = (2, 8, 30)
TARGETS = {"p50_ms": 150, "p99_ms": 500, "github_per_command": 6, "databricks_writes_per_command": 3}
GITHUB_HOURLY = 5000
FINAL = {
    "SUCCESS",
    "FAILED",
    "TIMEDOUT",
    "CANCELED",
    "INTERNAL_ERROR",
    "SKIPPED",
    "SUCCESS_WITH_FAILURES",
    "UPSTREAM_FAILED",
}
RUN_GET = re.compile(r'"GET /api/2\.[12]/jobs/runs/get\?run_id=(\d+)[ &]')


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

    def start(self) -> FollowerSchedule:
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


def open_prs(stack: Setup, alice: Api, r: redis.Redis, count: int) -> list[dict]:
    """alice pushes `count` branches over HTTP (one push) and opens a PR for each; returns them once
    every PR's own `test` run is reported and the queue is idle."""
    w = stack.workdir
    url = stack.services["forge"].url.replace("http://", f"http://alice:{TOKENS['alice']}@") + f"/{REPO}.git"
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

    wait_until(tests_reported, 120, "each PR's `test` run to finish")
    for pr in prs:  # the follower's last write for a `test` run is the commit status
        statuses = alice.call("GET", f"/repos/{REPO}/commits/{pr['sha']}/statuses")
        if not any(s["context"] == f"{BOT}/test" and s["state"] != "pending" for s in statuses):
            raise BenchError(f"PR #{pr['number']}: no final `{BOT}/test` status: {statuses}")
    return prs


def post_commands(
    alice: Api, prs: list[dict], total: int, interval: tuple[float, float], body_for, rng: random.Random
) -> list[dict]:
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
    """What a person sees: per PR one report, final, for the newest run, and its final status; no command answered
    by a reply (a reply to a `/train` that ran would be a refusal)."""
    problems: list[str] = []
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
        bots = [c for c in bob.pages(f"/repos/{REPO}/issues/{pr}/comments") if c["user"]["login"] == BOT]
        reports = [c for c in bots if f"<!-- {BOT}:report key=train -->" in (c["body"] or "")]
        if len(reports) != 1:
            problems.append(f"PR #{pr}: {len(reports)} train reports")
        elif (
            not any(f"— {state}" in reports[0]["body"] for state in FINAL)
            or f"/runs/{latest_run}" not in reports[0]["body"]
        ):
            problems.append(f"PR #{pr}: report not final for run {latest_run}: {reports[0]['body'][:160]!r}")
        replies = [c for c in bots if f"<!-- {BOT}:reply key=" in (c["body"] or "")]
        problems += [f"PR #{pr}: a reply to a /train that ran: {c['body'][:160]!r}" for c in replies]
        statuses = [
            s for s in bob.call("GET", f"/repos/{REPO}/commits/{sha[pr]}/statuses") if s["context"] == f"{BOT}/train"
        ]
        if not statuses or statuses[0]["state"] == "pending":
            problems.append(f"PR #{pr}: `{BOT}/train` status is {statuses[0]['state'] if statuses else None}")
    return {"ok": not problems, "problems": problems[:20], "problem_count": len(problems)}


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
            out[run.run_id] = {
                "start_time": run.start_time,
                "end_time": run.end_time,
                "result": (
                    run.state.result_state.value
                    if run.state and run.state.result_state
                    else run.state.life_cycle_state.value
                    if run.state
                    else ""
                ),
            }
    return out


def worker_events(text: str) -> list[dict]:
    return [e for e in json_lines(text) if "event" in e]


def task_timeline(worker: list[dict], web: list[dict], records: dict[int, dict]) -> dict[int, dict]:
    """comment_id → when the receiver queued the `run_command` task that started its run, when the
    worker began it and when it finished (epoch s): the run's `run.started` line names the task."""
    queued = {
        tid: iso_epoch(e["ts"]) for e in web if e.get("event") == "webhook.queued" for tid in e.get("task_ids", [])
    }
    began = {
        e["task_id"]: iso_epoch(e["ts"])
        for e in worker
        if e.get("event") == "task.started" and e.get("task") == "run_command" and e.get("task_id")
    }
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
    began = {
        e["task_id"]: (iso_epoch(e["ts"]), e.get("task"))
        for e in worker
        if e.get("event") == "task.started" and e.get("task_id")
    }
    out: dict[str, list[float]] = {}
    for e in worker:
        if e.get("event") == "task.done" and e.get("task_id") in began:
            t0, name = began[e["task_id"]]
            out.setdefault(name, []).append(iso_epoch(e["ts"]) - t0)
    return {
        name: {
            "tasks": len(v),
            "busy_s": round(sum(v), 2),
            "p50_ms": round(1000 * percentile(v, 50), 1),
            "max_ms": round(1000 * max(v), 1),
        }
        for name, v in out.items()
    }


def per_command(counts: dict, n: int) -> dict[str, float]:
    return {k: round(v / n, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def poll_phase(stack: Setup, alice: Api, r: redis.Redis, prs: list[dict]) -> dict:
    """One `/train toy --param sleep=N` per extra PR, all at once; polls per run and their schedule."""
    ws_log, worker_log = stack.services["workspace"].log_path, stack.services["worker"].log_path
    ws_off, worker_off = ws_log.stat().st_size, worker_log.stat().st_size
    schedule = FollowerSchedule(stack.services["redis"].url).start()
    try:
        sent = post_commands(
            alice, prs, len(SLEEPS), (0.0, 0.0), lambda i, pr: f"/train toy --param sleep={SLEEPS[i]}", random.Random(0)
        )
        ok, info = wait_until(
            lambda: (lambda res: res if res[0] else None)(lifecycles_done(r, sent)),
            max(SLEEPS) * 1.5 + 60,
            "the sleep runs to be followed to their end",
            every=0.5,
        )
    finally:
        schedule.stop()
    records = info["records_by_comment"]
    ws_text, worker_text = read_from(ws_log, ws_off), read_from(worker_log, worker_off)
    gets: dict[int, int] = {}
    for m in RUN_GET.finditer(ws_text):
        gets[int(m.group(1))] = gets.get(int(m.group(1)), 0) + 1
    follow_started = sum(
        1 for e in worker_events(worker_text) if e.get("event") == "task.started" and e.get("task") == "follow_run"
    )
    times = run_start_times(stack.services["workspace"].url, {rec["job_id"] for rec in records.values()})
    rows = []
    for i, c in enumerate(sent):
        rec = records[c["comment_id"]]
        run = times.get(rec["run_id"], {})
        start_s = (run.get("start_time") or 0) / 1000
        length = ((run.get("end_time") or 0) - (run.get("start_time") or 0)) / 1000
        etas = schedule.for_run(rec["run_id"])
        # the starter reads the run once (for its page URL); every other runs/get is a poll
        polls_ws = gets.get(rec["run_id"], 0) - 1 if ws_text else None
        rows.append(
            {
                "sleep_s": SLEEPS[i],
                "run_id": rec["run_id"],
                "result": run.get("result"),
                "run_length_s": round(length, 2),
                "polls": polls_ws,
                "polls_scheduled": len(etas),
                "poll_at_s": [round(t - start_s, 2) for t in etas],
            }
        )
    return {
        "runs": rows,
        "follow_run_started_in_worker_log": follow_started,
        "workspace_log_has_run_ids": bool(gets),
        "schedule_sample_errors": schedule.errors,
    }


def log_growth_verdict(rows: list[dict]) -> dict:
    """Polls grow no faster than log(length) iff, past a floor, each wait is at least a fixed share c
    of the time the run has taken: then a run of length L needs <= k + ln(L) / ln(1 + c) polls."""
    ratios = []
    for row in rows:
        t = row["poll_at_s"]
        for a, b in itertools.pairwise(t):
            if a >= 8.0:  # past the 2 s floor (0.25 × 8 s = 2 s)
                ratios.append((b - a) / a)
    counts = [
        (row["run_length_s"], row["polls"] if row["polls"] is not None else row["polls_scheduled"]) for row in rows
    ]
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
                out[f"polls_extrapolated_{label.replace(' ', '_')}"] = math.ceil(
                    p_max + math.log(length / max(l_max, 1)) / math.log(1 + c)
                )
        out["ok"] = c >= 0.1
        out["why"] = (
            (
                f"past 8 s every wait was >= {c:.2f} x the run's elapsed time (geometric spacing: "
                f"polls ~ ln(length)/ln(1+{c:.2f}))"
            )
            if out["ok"]
            else f"a wait after 8 s was only {c:.2f} x the elapsed time: spacing is not geometric"
        )
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200, help="`/train toy` comments to post")
    parser.add_argument("--prs", type=int, default=20, help="pull requests they are spread over (round-robin)")
    parser.add_argument(
        "--min-gap",
        type=float,
        default=0.3,
        help="seconds between comments, lower bound (~2.5 commands/s: what 2 cores carry while the sandbox also runs every task)",
    )
    parser.add_argument("--max-gap", type=float, default=0.5, help="seconds between comments, upper bound")
    parser.add_argument("--no-polls", action="store_true", help="skip the sleep=2/8/30 poll measurement")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    return parser.parse_args()


def latencies(sent: list[dict], records: dict[int, dict], times: dict[int, dict], timeline: dict[int, dict]) -> dict:
    """Per command: workspace start_time (run-now handled) - comment POST returned, and where that time went."""
    lat, missing = [], []
    split: dict[str, list[float]] = {
        "delivered_and_queued": [],
        "waiting_in_queue": [],
        "in_task_before_run_now": [],
        "run_command_task": [],
    }
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
    return {
        "latency_ms": summary(lat),
        "matched": len(lat),
        "unmatched_comment_ids": missing,
        "latency_split_ms": {k: summary(v) for k, v in split.items()},
    }


def request_figures(
    forge_counts: dict, ws_counts: dict, ws_text: str, records: dict, events: list[dict], n: int
) -> dict:
    """The bot's requests to the forge and the workspace per command, and the follower's polls."""
    bot_routes = forge_counts.get("by_user_route", {}).get(BOT, {})
    gh_total = forge_counts.get("by_user", {}).get(BOT, 0)
    dbx_writes = {k: v for k, v in ws_counts.items() if k.startswith("POST ")}
    dbx_reads = {k: v for k, v in ws_counts.items() if not k.startswith("POST ")}
    run_gets = sum(v for k, v in ws_counts.items() if k.endswith("/jobs/runs/get"))
    run_ids = {rec["run_id"] for rec in records.values()}
    per_run_gets: dict[int, int] = {}
    for m in RUN_GET.finditer(ws_text):
        rid = int(m.group(1))
        if rid in run_ids:
            per_run_gets[rid] = per_run_gets.get(rid, 0) + 1
    # the starter reads each run once (its page URL); the rest are the follower's polls
    follower_polls = (sum(per_run_gets.values()) - len(run_ids)) if per_run_gets else run_gets - len(run_ids)
    follow_started = sum(1 for e in events if e.get("event") == "task.started" and e.get("task") == "follow_run")
    return {
        "github": {
            "bot_requests": gh_total,
            "per_command": round(gh_total / n, 3),
            "by_route_per_command": per_command(bot_routes, n),
            "by_route": bot_routes,
            "all_users": forge_counts.get("by_user", {}),
        },
        "databricks": {
            "writes": sum(dbx_writes.values()),
            "writes_per_command": round(sum(dbx_writes.values()) / n, 3),
            "writes_by_route_per_command": per_command(dbx_writes, n),
            "reads_by_route_per_command": per_command(dbx_reads, n),
            "requests_per_command": round(sum(ws_counts.values()) / n, 3),
            "runs_get": run_gets,
            "follower_polls": follower_polls,
            "follower_polls_per_command": round(follower_polls / n, 3),
            "follow_run_tasks_started": follow_started,
            "per_run_counts_from_access_log": bool(per_run_gets),
        },
    }


def log_offsets(stack: Setup) -> dict[str, int]:
    return {name: stack.services[name].log_path.stat().st_size for name in ("workspace", "worker", "web")}


def post_and_follow(stack: Setup, opts, alice: Api, r: redis.Redis, prs: list[dict]) -> dict:
    """Counters reset, the commands posted, every lifecycle followed to its end: what was sent and what it cost."""
    for name in ("forge", "workspace"):
        requests.post(f"{stack.url(name)}/sandbox/requests/reset", timeout=10).raise_for_status()
    offsets = log_offsets(stack)
    sessions = {s.name: s.process.pid for s in stack.services.values()}
    cpu0, machine0 = harness.session_cpu(sessions), harness.machine_busy()
    t0 = time.monotonic()
    sent = post_commands(
        alice, prs, opts.commands, (opts.min_gap, opts.max_gap), lambda i, pr: "/train toy", random.Random(opts.seed)
    )
    t_post = time.monotonic() - t0
    say(
        f"  {len(sent)} comments posted in {t_post:.1f} s ({len(sent) / t_post:.1f}/s); waiting for every lifecycle ..."
    )
    _, info = wait_until(
        lambda: (lambda res: res if res[0] else None)(lifecycles_done(r, sent)),
        300,
        "every command's run to be followed to its end",
        every=0.5,
    )
    t_drain = time.monotonic() - t0
    cpu1, machine1 = harness.session_cpu(sessions), harness.machine_busy()
    say(
        f"  all {len(info['records_by_comment'])} runs followed to their end, queue idle "
        f"({t_drain:.1f} s after the first comment)"
    )
    return {
        "sent": sent,
        "records": info["records_by_comment"],
        "t_post": t_post,
        "t_drain": t_drain,
        "offsets": offsets,
        "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0},
        "machine_busy_pct": round(harness.busy_pct(machine0, machine1), 1),
        "forge_counts": requests.get(f"{stack.url('forge')}/sandbox/requests", timeout=10).json(),
        "ws_counts": requests.get(f"{stack.url('workspace')}/sandbox/requests", timeout=10).json(),
    }


def measure_commands(stack: Setup, opts, alice: Api, bob: Api, r: redis.Redis, prs: list[dict], busy: float) -> dict:
    """The measurement: latency per command, requests per command, worker time, and the forge's view of it all."""
    done = post_and_follow(stack, opts, alice, r, prs)
    sent, records, offsets = done["sent"], done["records"], done["offsets"]
    ws_text = read_from(stack.services["workspace"].log_path, offsets["workspace"])
    events = worker_events(read_from(stack.services["worker"].log_path, offsets["worker"]))
    web_events = worker_events(read_from(stack.services["web"].log_path, offsets["web"]))
    checks = verify_on_forge(bob, r, sent, records, prs)
    times = run_start_times(stack.url("workspace"), {rec["job_id"] for rec in records.values()})
    measured = latencies(sent, records, times, task_timeline(events, web_events, records))
    n = len(sent)
    results_by_state: dict[str, int] = {}
    for c in sent:
        results_by_state[c.get("run_result", "?")] = results_by_state.get(c.get("run_result", "?"), 0) + 1
    measured.update(
        {
            "commands": n,
            "prs": len(prs),
            "posting_seconds": round(done["t_post"], 2),
            "rate_per_s": round(n / done["t_post"], 2),
            "lifecycle_seconds": round(done["t_drain"], 2),
            "worker": worker_stats(worker_busy(events), n, done["t_drain"]),
            "cpu_seconds": done["cpu_seconds"],
            "machine_busy_before_pct": round(busy, 1),
            "machine_busy_pct": done["machine_busy_pct"],
            "comment_post_ms": summary([c["post_ms"] for c in sent]),
            **request_figures(done["forge_counts"], done["ws_counts"], ws_text, records, events, n),
            "run_results": results_by_state,
            "forge_checks": checks,
            "per_command": [
                {k: (round(v, 1) if isinstance(v, float) else v) for k, v in c.items() if k != "posted_at"}
                for c in sent
            ],
        }
    )
    say(f"  forge checks: {'ok' if checks['ok'] else str(checks['problem_count']) + ' problems'}")
    return measured


def measure_polls(stack: Setup, alice: Api, r: redis.Redis, prs: list[dict]) -> dict:
    say(
        f"  poll growth: /train toy --param sleep={{{','.join(map(str, SLEEPS))}}} on PRs "
        f"{', '.join('#' + str(p['number']) for p in prs)} at once ..."
    )
    t0 = time.monotonic()
    polls = poll_phase(stack, alice, r, prs)
    polls["verdict"] = log_growth_verdict(polls["runs"])
    polls["seconds"] = round(time.monotonic() - t0, 1)
    return polls


def bench(run: harness.Run, opts, busy: float, started: float) -> None:
    say(f"starting the stack under {run.workdir} ...")
    env = {**SECRETS, "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    stack = run.track(setups.jobs(run.workdir, env, worker_concurrency=WORKER_CONCURRENCY))
    t_stack = time.monotonic() - started
    say(
        f"  redis {stack.url('redis')}  forge {stack.url('forge')}  workspace {stack.url('workspace')}  "
        f"web {stack.url('web')}  worker --concurrency {WORKER_CONCURRENCY}  ({t_stack:.1f} s)"
    )
    r = redis.Redis.from_url(stack.url("redis"))
    alice, bob = Api(stack.url("forge"), TOKENS["alice"]), Api(stack.url("forge"), TOKENS["bob"])
    extra = 0 if opts.no_polls else len(SLEEPS)
    t0 = time.monotonic()
    prs = open_prs(stack, alice, r, opts.prs + extra)
    say(f"  {len(prs)} PRs open, each PR's `test` run reported ({time.monotonic() - t0:.1f} s)")
    main_prs, poll_prs = prs[: opts.prs], prs[opts.prs :]
    measured = measure_commands(stack, opts, alice, bob, r, main_prs, busy)
    polls = measure_polls(stack, alice, r, poll_prs) if poll_prs else None
    report(opts, measured, polls, time.monotonic() - started, t_stack)


def main() -> int:
    opts = parse_args()
    started = time.monotonic()
    busy = harness.busy_before_start("latencies will be higher")
    return harness.run(
        "mlops-bench-commands-",
        opts.keep,
        lambda run: bench(run, opts, busy, started),
        failures=(requests.RequestException,),
    )


def worker_stats(busy: dict[str, dict], n: int, seconds: float) -> dict:
    """Worker-seconds per command (its run_command plus its share of follow_run) and what 2 processes
    can carry at that cost."""
    total = sum(b["busy_s"] for b in busy.values())
    per = total / n if n else 0.0
    return {
        "tasks": busy,
        "busy_seconds": round(total, 1),
        "worker_seconds_per_command": round(per, 3),
        "capacity_commands_per_s": round(2 / per, 2) if per else None,
        "utilisation_pct": round(100 * total / (2 * seconds), 1) if seconds else None,
    }


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), 1),
        "p50": round(percentile(values, 50), 1),
        "p90": round(percentile(values, 90), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
        "mean": round(sum(values) / len(values), 1),
    }


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
        (
            f"comment -> run-now p50 ({m['matched']}/{m['commands']} matched)",
            f"{lat.get('p50', nan):.0f} ms",
            f"<= {TARGETS['p50_ms']} ms",
            mark("p50_ms"),
        ),
        ("comment -> run-now p99", f"{lat.get('p99', nan):.0f} ms", f"<= {TARGETS['p99_ms']} ms", mark("p99_ms")),
        ("  p90 / max", f"{lat.get('p90', nan):.0f} / {lat.get('max', nan):.0f} ms", "", ""),
        ("  webhook delivered + queued, p50 / p99", p50_p99(split["delivered_and_queued"]), "", ""),
        ("  waiting in the queue, p50 / p99", p50_p99(split["waiting_in_queue"]), "", ""),
        ("  in the task until run-now, p50 / p99", p50_p99(split["in_task_before_run_now"]), "", ""),
        ("  whole run_command task, p50 / p99", p50_p99(split["run_command_task"]), "", ""),
        ("  worker-seconds per command (all tasks)", f"{wk['worker_seconds_per_command']:.2f} s", "", ""),
        (
            "  => 2 worker processes carry",
            f"{wk['capacity_commands_per_s'] or nan:.1f} /s",
            f"{m['rate_per_s']:.1f}/s in",
            "",
        ),
        (
            "  machine busy during the commands (before)",
            f"{m['machine_busy_pct']:.0f} % ({m['machine_busy_before_pct']:.0f} %)",
            "",
            "",
        ),
        (
            "GitHub requests per command",
            f"{gh['per_command']:.2f}",
            f"<= {TARGETS['github_per_command']}",
            mark("github_per_command"),
        ),
        (
            "Databricks writes per command",
            f"{dbx['writes_per_command']:.2f}",
            f"<= {TARGETS['databricks_writes_per_command']}",
            mark("databricks_writes_per_command"),
        ),
        ("  Databricks requests per command (all)", f"{dbx['requests_per_command']:.2f}", "", ""),
        ("  follower polls (runs/get) per command", f"{dbx['follower_polls_per_command']:.2f}", "", ""),
        (
            "lifecycles complete (report, status)",
            f"{m['matched']}/{m['commands']}, {m['forge_checks']['problem_count']} problems",
            "all",
            mark("lifecycles_complete"),
        ),
    ]
    if polls is not None:
        for row in polls["runs"]:
            rows.append(
                (
                    f"follow_run polls, sleep={row['sleep_s']} (run {row['run_length_s']:.1f} s)",
                    f"{row['polls']}",
                    "",
                    "",
                )
            )
        v = polls["verdict"]
        rows.append(
            (
                "polls grow no faster than log(length)",
                f"wait >= {v['wait_share_of_elapsed_min']:.2f} x elapsed"
                if "wait_share_of_elapsed_min" in v
                else "counts only",
                "geometric",
                mark("polls_log_growth"),
            )
        )
        if "polls_extrapolated_1_h" in v:
            rows.append(
                (
                    "  polls extrapolated: 1 h / 1 day run",
                    f"{v['polls_extrapolated_1_h']} / {v['polls_extrapolated_1_day']}",
                    "",
                    "",
                )
            )
    harness.print_table(
        f"mlops-bot commands: {m['commands']} x `/train toy` on {m['prs']} PRs at "
        f"{m['rate_per_s']:.1f}/s, worker --concurrency {WORKER_CONCURRENCY}, {os.cpu_count()} CPUs, "
        f"{elapsed:.0f} s (stack up in {t_stack:.0f} s)",
        rows,
    )
    if polls is not None:
        for row in polls["runs"]:
            print(
                f"  polls of the sleep={row['sleep_s']} run at "
                + ", ".join(f"{t:.1f}" for t in row["poll_at_s"])
                + " s after run-now"
            )
        print(
            f"  ({polls['follow_run_started_in_worker_log']} follow_run tasks started in the worker log during "
            f"that phase; {sum(r['polls'] or 0 for r in polls['runs'])} polls counted in the workspace log)"
        )
    print(
        "  CPU seconds during the commands: "
        + ", ".join(f"{k} {v:.1f}" for k, v in m["cpu_seconds"].items() if v >= 0.05)
        + " (`children`: processes they ran and reaped, e.g. the workspace's tasks and git)"
    )
    hourly = math.floor(GITHUB_HOURLY / gh["per_command"]) if gh["per_command"] else 0
    print(
        f"GitHub allows an installation {GITHUB_HOURLY:,} requests an hour: that carries {hourly:,} commands an hour "
        f"(at {gh['per_command']:.2f} requests per command)"
    )
    print(
        "  bot's GitHub requests per command by route: "
        + ", ".join(f"{k} {v:.2f}" for k, v in gh["by_route_per_command"].items())
    )
    print(
        "  Databricks per command: writes "
        + ", ".join(f"{k} {v:.2f}" for k, v in dbx["writes_by_route_per_command"].items())
        + "; reads "
        + ", ".join(f"{k} {v:.2f}" for k, v in dbx["reads_by_route_per_command"].items())
    )
    print(f"  run results: {m['run_results']}")
    for problem in m["forge_checks"]["problems"][:5]:
        print(f"  problem: {problem}")
    missed = [k for k, ok in verdicts.items() if not ok]
    print("all targets met" if not missed else f"MISSED: {', '.join(missed)}")

    harness.write_results(
        "commands",
        {
            "setup": {
                "commands": m["commands"],
                "prs": m["prs"],
                "gap_s": [opts.min_gap, opts.max_gap],
                "worker_concurrency": WORKER_CONCURRENCY,
                "web": f"gunicorn {WEB_WORKER} 1x4",
                "latency": "workspace run start_time (set in run-now) - comment POST returned",
            },
            **{k: v for k, v in m.items() if k != "forge_checks"},
            "forge_checks": m["forge_checks"],
            "github_hourly_budget": GITHUB_HOURLY,
            "commands_per_hour_on_budget": hourly,
            "polls": polls,
            "targets": TARGETS,
            "pass": verdicts,
            "missed": missed,
            "elapsed_s": round(elapsed, 1),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
