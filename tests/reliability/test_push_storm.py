"""A storm of pushes: 1,000 signed push deliveries for 1,000 new branches at once, on the `jobs` stack — a mass
rebase.

The `jobs` config's workflows start on a command (`train`) and on a pull request (`test`): a push starts neither, so
since issue #20 it makes neither job (a branch's job is made by the first run that needs it; Databricks creates at
most 10,000 jobs an hour in a workspace). Measured and printed (and written to test-artifacts/push_storm.json): the
receiver's answer time (p50, p99, max), how long until every push's job sync is done, the CPU each process used,
and what the workspace holds in the end: no job. Every push synced once: none lost, none twice.
"""

from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import os
import statistics
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import redis

from core import events
from core.queue import DEFAULT_QUEUE
from devstack import setups
from devstack.mlrepo import REPO
from devstack.sandboxes import WORKSPACE_TOKEN
from devstack.waiting import wait_until
from tests.conftest import ROOT, SECRETS

BRANCHES = 1000
SENDERS = 8  # connections at once, as GitHub's delivery workers would open them
WORKFLOWS = ("test", "train")  # the `jobs` config's workflows: a push looks for each branch's job of each
PREFIX = "mlops-bot"
REPOSITORY = {"full_name": REPO, "name": REPO.split("/")[1], "owner": {"login": REPO.split("/")[0]}}

pytestmark = pytest.mark.chaos


def branch_name(i: int) -> str:
    """New branches of every shape: slashes, unicode, dots, `@`."""
    return ["storm/{:04d}", "feature/ünï-{:04d}", "fix/{:04d}.v2", "user@home/{:04d}", "日本/{:04d}"][i % 5].format(i)


def push_body(branch: str) -> bytes:
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": uuid.uuid4().hex + "0" * 8,
            "created": True,
            "deleted": False,
            "repository": REPOSITORY,
            "pusher": {"name": "alice"},
        }
    ).encode()


class Sender:
    """One keep-alive connection per sending thread, like a delivery worker."""

    def __init__(self, url: str):
        self.host, self.port = urlsplit(url).hostname, urlsplit(url).port
        self.conn: http.client.HTTPConnection | None = None

    def send(self, body: bytes) -> tuple[int, float]:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], body),
        }
        for attempt in (1, 2):  # a keep-alive connection the server closed meanwhile: one new one
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            started = time.perf_counter()
            try:
                self.conn.request("POST", "/webhooks/github", body, headers)
                r = self.conn.getresponse()
                r.read()
                return r.status, time.perf_counter() - started
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def managed_job_names(workspace: str) -> list[str]:
    """Every job's name in the workspace, through jobs/list pages of 100."""
    parts = urlsplit(workspace)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    names, token = [], ""
    try:
        while True:
            query = {"limit": 100, **({"page_token": token} if token else {})}
            conn.request(
                "GET", "/api/2.2/jobs/list?" + urlencode(query), headers={"Authorization": f"Bearer {WORKSPACE_TOKEN}"}
            )
            page = json.loads(conn.getresponse().read())
            names += [j["settings"]["name"] for j in page.get("jobs", [])]
            token = page.get("next_page_token")
            if not token:
                return names
    finally:
        conn.close()


class Progress:
    """The pushes the worker says it synced (`branch.synced`: each of the branch's jobs and what the sync did to it),
    read from its log as it grows."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def synced(self) -> list[tuple[dict[str, str], float]]:
        """(job name → outcome, when in epoch seconds) for each sync logged since the last call."""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        out = []
        for line in complete.decode(errors="replace").splitlines():
            if '"branch.synced"' not in line:
                continue
            entry = json.loads(line)
            out.append((entry["jobs"], datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()))
        return out


def quiet(r: redis.Redis, checks: int = 3) -> bool:
    """Nothing queued and nothing held by the worker, several times in a row."""
    for _ in range(checks):
        if r.llen(DEFAULT_QUEUE) or r.hlen("unacked"):
            return False
        time.sleep(0.3)
    return True


def cpu_seconds(service) -> float:
    """User + system CPU of a service's whole process group so far (Linux /proc)."""
    group, total = os.getpgid(service.process.pid), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return round(total, 1)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@pytest.mark.timeout(600)
def test_a_thousand_pushes_are_each_synced_once_and_make_no_job_nothing_runs(tmp_path):
    env = {**SECRETS, "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}  # branch.synced is INFO
    branches = [branch_name(i) for i in range(BRANCHES)]
    expected = {f"{PREFIX}/{REPO}/{b}/{w}" for b in branches for w in WORKFLOWS}
    bodies = [push_body(b) for b in branches]

    with setups.jobs(tmp_path, env, worker_concurrency=4) as stack:
        r = redis.Redis.from_url(stack.url("redis"))
        local = threading.local()

        def send(body: bytes) -> tuple[int, float]:
            if not hasattr(local, "sender"):
                local.sender = Sender(stack.url("web"))
            return local.sender.send(body)

        started, wall_started = time.monotonic(), time.time()
        with concurrent.futures.ThreadPoolExecutor(SENDERS) as pool:
            answers = list(pool.map(send, bodies))
        sent = time.monotonic() - started

        # progress from the worker's log: one `branch.synced` line per push
        synced: list[tuple[dict[str, str], float]] = []
        log = Progress(stack.services["worker"].log_path)

        def all_synced() -> bool:
            synced.extend(log.synced())
            return len(synced) >= BRANCHES

        try:
            wait_until(all_synced, timeout=400, what="every push's job sync", every=1.0)
        finally:
            wait_until(lambda: quiet(r), timeout=120, what="an idle queue")
            final = managed_job_names(stack.url("workspace"))
            cpu = {name: cpu_seconds(service) for name, service in stack.services.items()}
            r.close()
        until_all = max(when for _, when in synced) - wall_started

    looked_for = collections.Counter(name for jobs, _ in synced for name in jobs)  # each push: its branch's jobs
    outcomes = collections.Counter(outcome for jobs, _ in synced for outcome in jobs.values())
    latencies = [seconds for _, seconds in answers]
    figures = {
        "deliveries": len(answers),
        "senders": SENDERS,
        "answers": dict(collections.Counter(status for status, _ in answers)),
        "receiver_ms": {
            "p50": round(1000 * statistics.median(latencies), 1),
            "p99": round(1000 * pct(latencies, 99), 1),
            "max": round(1000 * max(latencies), 1),
        },
        "sending_s": round(sent, 1),
        "deliveries_per_s": round(len(answers) / sent, 1),
        "until_every_push_is_synced_s": round(until_all, 1),
        "cpu_s": cpu,  # where the time goes: the bot's processes or the stand-ins
        "syncs": len(synced),
        "sync_outcomes": dict(outcomes),  # absent: the branch has no job of that workflow, and none is made
        "twice": sum(n - 1 for n in looked_for.values() if n > 1),
        "lost": len(expected - set(looked_for)),
        "jobs_made": len(final),
    }
    out = ROOT / "test-artifacts" / "push_storm.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")
    print("\npush storm:", json.dumps(figures, ensure_ascii=False))

    assert figures["answers"] == {202: BRANCHES}
    assert (figures["syncs"], figures["twice"], figures["lost"]) == (BRANCHES, 0, 0), figures
    assert figures["sync_outcomes"] == {"absent": len(expected)} and final == [], figures
