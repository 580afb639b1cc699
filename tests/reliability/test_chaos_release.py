"""Chaos on the release train (issue #12), on the whole loop: real Redis, a real Celery worker and beat, a real MLflow
server, the sandbox forge, workspace (jobs and the Unity Catalog registry) and Slack. `make chaos`, not `make test`.

Each scenario plays the demo's story up to the approval request (alice pushes, opens a PR, bob merges: staging
training, validation against the prod champion, the request on the merged PR and in Slack), breaks something, and
counts what people would see — each must happen exactly once:

  (d) the worker is SIGKILLed while it is inside bob's `/approve` (the workspace holds one of its requests 20 s:
      the copy into prod, the alias move, the deploy's run-now), a new worker takes over: one prod version, one
      alias move, one deploy run, one GitHub deployment, one decision comment and reply, one Slack echo and
      deploy line, one audit entry per decision;
  (e) "applied, then the answer lost" on the release's writes: run-now of the validation and of the deploy
      (the workspace's `apply_then_drop`), the bot's comments and its deployment statuses (the forge's `lose`);
  (f) MLflow is stopped as the staging training ends (the bot reads the training run's tags there to prove the
      version's lineage, then starts the validation) and started again 45 s later on the same port and store:
      the validation runs and is reported once, the approval asked once, and a `/help` sent during the outage
      is answered at once (the worker's slots are not held by a task waiting for MLflow);
  (g) ingest while a worker drains: 200 `/help` comments arrive in one go; the receiver's answer times while the
      worker drains them on the same cores (p50, p99), every one answered once.

Rows go to the table `make chaos` prints (tests/reliability/chaos_support.py).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis
import requests

from core import audit
from devstack import mlflow as devstack_mlflow
from devstack import setups
from devstack.bot import start_worker
from devstack.demo import PROD, STAGING, Story, seed_champion, uc_env
from devstack.sandboxes import WORKSPACE_TOKEN
from devstack.setups import REPO, Setup, whole_loop
from devstack.waiting import TimedOut, wait_until
from tests.conftest import SECRETS
from tests.integration.test_receiver_worker import worker_lines
from tests.reliability.chaos_support import FIGURES, figures  # noqa: F401 (the table's fixture, autouse)
from tests.reliability.test_chaos import RESUME_LIMIT, Forge, kill_and_replace, pr_ready

pytestmark = pytest.mark.chaos

RUN_NOW = "/api/2.*/jobs/run-now"


# --- the stack and what people see of it ------------------------------------------------------------------------
@pytest.fixture
def loop(tmp_path):
    with pytest.MonkeyPatch.context() as mp, whole_loop(tmp_path / "loop") as setup:
        for key, value in uc_env(setup).items():  # uc_client sets these too: restored when the test is done
            mp.setenv(key, value)
        seed_champion(setup, out=lambda _: None)
        yield setup


class Release(Story):
    """The demo's story, and the counts of what it left behind."""

    def __init__(self, stack: Setup):
        self.lines: list[str] = []
        super().__init__(stack, out=self.lines.append)
        self.http = requests.Session()

    def up_to_the_approval_request(self, merged: Callable[[], None] | None = None) -> None:
        """push, PR, merge → the validated version's approval request (`merged` runs right after the merge)."""
        self.push_branch()
        self.open_pr()
        if merged is None:
            self.merge()
            return
        self.repo("bob").get_pull(self.pr.number).merge(merge_method="merge")
        merged()
        self.merge_seen()

    def merge_seen(self) -> None:
        [ask] = wait_until(lambda: self.bot_comments("approval"), 300, "the approval request", every=0.5)
        self.version = ask.body.split(f"key={STAGING}@", 1)[1].split(" ", 1)[0]

    # --- faults
    def workspace_fault(self, spec: str) -> None:
        r = self.http.post(f"{self.stack.url('workspace')}/sandbox/faults", json={"spec": spec}, timeout=10)
        assert r.status_code == 200, r.text

    def workspace_faults(self) -> list[dict]:
        return self.http.get(f"{self.stack.url('workspace')}/sandbox/faults", timeout=10).json()["faults"]

    def forge_fault(self, spec: str) -> None:
        r = self.http.post(f"{self.stack.url('forge')}/sandbox/faults", json={"spec": spec}, timeout=10)
        assert r.status_code < 300, r.text

    def forge_faults(self) -> list[dict]:
        found = self.http.get(f"{self.stack.url('forge')}/sandbox/faults", timeout=10).json()
        return found["faults"] if isinstance(found, dict) else found

    # --- counts
    def markers(self) -> Counter:
        """The bot's comments on the merged PR by hidden marker (kind and key)."""
        found: Counter = Counter()
        for c in self.repo().get_issue(self.pr.number).get_comments():
            if c.user.login == "mlops-bot" and c.body.startswith("<!-- mlops-bot:"):
                found[c.body.split(" -->", 1)[0].removeprefix("<!-- mlops-bot:")] += 1
        return found

    def workspace(self, path: str, **params) -> dict:
        r = self.http.get(
            self.stack.url("workspace") + path,
            params=params,
            headers={"Authorization": f"Bearer {WORKSPACE_TOKEN}"},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()

    def runs_of(self, workflow: str) -> list[dict]:
        """Runs of the default branch's `workflow` jobs (every environment)."""
        jobs = self.workspace("/api/2.2/jobs/list", limit=100).get("jobs", [])
        out = []
        for job in jobs:
            if f"/{REPO}/main/{workflow}" in job["settings"]["name"]:
                out += self.workspace("/api/2.2/jobs/runs/list", job_id=job["job_id"]).get("runs", [])
        return out

    def alias_moves(self) -> list[dict]:
        moves = self.http.get(
            f"{self.stack.url('workspace')}/sandbox/uc/alias-moves", params={"name": PROD}, timeout=10
        )
        return moves.json()["moves"]

    def prod_copies(self) -> Counter:
        """The prod versions copied from the approved staging version, by status (READY: finalized, files in)."""
        found = [
            self.mlflow.get_model_version(PROD, v.version) for v in self.mlflow.search_model_versions(f"name='{PROD}'")
        ]
        return Counter(
            str(v.status).removeprefix("ModelVersionStatus.")
            for v in found
            if v.tags.get("copied_from") == f"{STAGING}@{self.version}"
            or v.source == f"models:/{STAGING}/{self.version}"
        )

    def slack_texts(self) -> list[str]:
        messages = self.http.get(f"{self.stack.url('slack')}/sandbox/messages", timeout=10).json()["messages"]
        return [m["text"] for m in messages] + [r["text"] for m in messages for r in m.get("replies", [])]

    def audit(self) -> Counter:  # type: ignore[override]  (the story's audit() prints the trail)
        client = redis.Redis.from_url(self.stack.url("redis"))
        try:
            return Counter(f"{e['decision']} {e['model']}@{e['version']}" for e in audit.entries(client))
        finally:
            client.close()

    def prod_deployments(self) -> list[list[str]]:
        return [
            [s.state for s in reversed(list(d.get_statuses()))] for d in self.repo().get_deployments(environment="prod")
        ]


def approval_effects(r: Release, approve_comment: int) -> Counter:
    """Everything an approval should leave, once each."""
    promoted = r.champion()
    moves = [m for m in r.alias_moves() if m["alias"] == "champion" and m["to"] == promoted and m["from"] != m["to"]]
    markers = r.markers()
    trail = r.audit()
    slack = r.slack_texts()
    copies = r.prod_copies()
    return Counter(
        {
            "prod version": sum(copies.values()),
            "prod version READY": copies["READY"],
            "alias move": len(moves),
            "deploy run (prod)": sum(
                1 for run in r.runs_of("deploy") if "prod" in json.dumps(run.get("job_parameters"))
            ),
            "GitHub prod deployment": len(r.prod_deployments()),
            "decision comment": markers[f"decision key={STAGING}@{r.version}"],
            "reply to /approve": markers[f"reply key={approve_comment}-0"],
            "release comment": markers["release key=churn"],
            "Slack echo": sum(1 for t in slack if t.startswith(f"✅ {STAGING}@{r.version} approved by @bob")),
            "Slack deploy line": sum(1 for t in slack if f"deploy of `{PROD}` v{promoted} to prod" in t),
            "audit approved": trail[f"approved {STAGING}@{r.version}"],
            "audit copied": trail[f"copied {STAGING}@{r.version}"],
            "audit promoted": trail[f"promoted {PROD}@{promoted}"],
            "audit deploy-started": trail[f"deploy-started {PROD}@{promoted}"],
            "audit deployed": trail[f"deployed {PROD}@{promoted}"],
        }
    )


def row(scenario: str, effects: Counter, took: float, **more) -> dict:
    lost = sorted(k for k, n in effects.items() if n == 0)
    twice = {k: n for k, n in effects.items() if n > 1}
    got = {
        "scenario": scenario,
        "handled": sum(1 for n in effects.values() if n),
        "lost": len(lost),
        "duplicates": sum(n - 1 for n in twice.values()),
        "took_s": round(took, 1),
        "effects": dict(effects),
        "missing": lost,
        "twice": twice,
        **more,
    }
    FIGURES.append(got)
    return got


def approval_done(r: Release, approve_comment: int) -> bool:
    """bob has his answer and the prod deploy is reported (its deployment has a final status)."""
    if not r.bot_comments("reply", f"{approve_comment}-0"):
        return False
    return any(s and s[-1] in ("success", "failure", "error") for s in r.prod_deployments())


# --- (d) SIGKILL inside an approval -----------------------------------------------------------------------------
UC = "/api/2.0/mlflow/unity-catalog"


@pytest.mark.timeout(600)  # the copy's case waits ~3 minutes for the half-made copy to count as abandoned
@pytest.mark.parametrize(
    "step, path",
    [
        # the workspace holds the request 20 s, then applies it: the killed worker never heard the answer
        # the killed worker's copy stays PENDING_REGISTRATION without files: the new one waits until it is
        # abandoned (workers/gateways/registry.py ABANDONED_AFTER_S), deletes it and copies again
        ("the copy into prod", f"{UC}/model-versions/create"),
        ("the alias move", f"{UC}/registered-models/alias"),
        ("the deploy's run-now", RUN_NOW),
    ],
)
def test_a_worker_killed_inside_an_approval_the_version_reaches_prod_once(loop, step, path):
    t0 = time.monotonic()
    r = Release(loop)
    r.up_to_the_approval_request()
    first = loop.services["worker"]
    r.workspace_fault(f"POST:{path}=delay20:1")  # the worker waits inside the task, on this request
    approve = r.comment("bob", "/approve")
    wait_until(lambda: r.workspace_faults()[-1]["remaining"] == 0, 60, step, every=0.1)
    time.sleep(1)
    second, killed = kill_and_replace(loop, first, "worker-2")
    try:
        wait_until(lambda: approval_done(r, approve.id), RESUME_LIMIT + 300, "the answer, the deploy", every=1.0)
        done_s = time.monotonic() - killed
    except TimedOut:
        done_s = None
    time.sleep(5)  # anything duplicated would show by now
    effects = approval_effects(r, approve.id)
    again = [e for e in worker_lines(second) if e.get("event") == "task.started" and e.get("task") == "run_command"]
    got = row(
        f"(d) SIGKILL worker inside /approve: {step}",
        effects,
        time.monotonic() - t0,
        re_executed=len(again),
        resume_s=None if done_s is None else round(done_s, 1),
        reply=[c.body.splitlines()[-1] for c in r.bot_comments("reply", f"{approve.id}-0")],
        prod_copies=dict(r.prod_copies()),
        note=("prod deploy reported" if done_s is not None else "prod deploy never reported")
        + ("" if effects["prod version READY"] else "; the prod copy is not READY"),
    )
    assert again, "the new worker never ran the /approve again: the kill did not land inside the task"
    assert not got["missing"] and not got["twice"], got


# --- (e) applied, then the answer lost ---------------------------------------------------------------------------
def request_effects(r: Release) -> Counter:
    """What a validated version's approval request should leave, once each."""
    trail, markers = r.audit(), r.markers()
    asks = [t for t in r.slack_texts() if f"*{STAGING}* version {r.version} " in t]
    return Counter(
        {
            "validation run": len(r.runs_of("validate")),
            "approval comment": markers[f"approval key={STAGING}@{r.version}"],
            "Slack approval request": len(asks),
            "audit validated": trail[f"validated {STAGING}@{r.version}"],
            "audit requested": trail[f"requested {STAGING}@{r.version}"],
            "GitHub staging deployment": len(list(r.repo().get_deployments(environment="staging"))),
        }
    )


def fired(faults: list[dict]) -> int:
    """How many answers the armed faults have lost so far (each is armed for one request)."""
    return sum(f.get("fired", 1 if f["remaining"] == 0 else 0) for f in faults)


def test_writes_applied_then_their_answers_lost_each_happens_once(loop):
    t0 = time.monotonic()
    r = Release(loop)
    bot = "user=mlops-bot"

    def lose_the_validation_answers() -> None:
        """Once the staging training runs, the next run-now (the validation's) and the next bot comment lose
        their answers, and so does a staging deployment status."""
        wait_until(lambda: r.runs_of("train"), 60, "the staging training", every=0.5)
        r.workspace_fault(f"POST:{RUN_NOW}=apply_then_drop:1")
        r.forge_fault(f"POST:/repos/{REPO}/issues/*/comments=lose,{bot}:1")
        r.forge_fault(f"POST:/repos/{REPO}/deployments/*/statuses=lose,{bot}:1")

    r.up_to_the_approval_request(merged=lose_the_validation_answers)
    wait_until(lambda: request_effects(r)["Slack approval request"], 60, "the Slack request", every=0.5)
    time.sleep(3)
    before = request_effects(r)
    lost_before = fired(r.workspace_faults()) + fired(r.forge_faults())

    r.workspace_fault(f"POST:{RUN_NOW}=apply_then_drop:1")  # the deploy's
    r.forge_fault(f"POST:/repos/{REPO}/issues/*/comments=lose,{bot}:1")  # the decision or the reply
    r.forge_fault(f"PATCH:/repos/{REPO}/issues/comments/*=lose,{bot}:1")  # the release comment
    r.forge_fault(f"POST:/repos/{REPO}/deployments=lose,{bot}:1")  # the prod deployment
    r.forge_fault(f"POST:/repos/{REPO}/deployments/*/statuses=lose,{bot}:1")
    approve = r.comment("bob", "/approve")
    t_approve = time.monotonic()
    try:
        wait_until(lambda: approval_done(r, approve.id), 240, "the answer, the deploy", every=1.0)
        done_s: float | None = time.monotonic() - t_approve
    except TimedOut:
        done_s = None
    time.sleep(5)
    after = approval_effects(r, approve.id)
    lost_after = fired(r.workspace_faults()) + fired(r.forge_faults()) - lost_before
    took = time.monotonic() - t0
    first = row(
        "(e) answers lost: validation run-now, comment, status",
        before,
        took,
        answers_lost=lost_before,
        note=f"{lost_before} answers lost",
    )
    second = row(
        "(e) answers lost: deploy run-now, comments, deployment+status",
        after,
        took,
        answers_lost=lost_after,
        resume_s=None if done_s is None else round(done_s, 1),
        reply=[c.body.splitlines()[-1] for c in r.bot_comments("reply", f"{approve.id}-0")],
        note=f"{lost_after} answers lost" + ("" if done_s is not None else "; prod deploy never reported"),
    )
    assert not first["missing"] and not first["twice"], first
    assert not second["missing"] and not second["twice"], second


# --- (f) MLflow down as the validation starts -------------------------------------------------------------------
OUTAGE_S = 45.0


def registered(r: Release) -> bool:
    """The staging training's `register` task is done: the run needs MLflow no more (the bot still does)."""
    for run in r.runs_of("train"):
        got = r.workspace("/api/2.2/jobs/runs/get", run_id=run["run_id"])
        for task in got.get("tasks", []):
            if task["task_key"] == "register" and task.get("state", {}).get("life_cycle_state") == "TERMINATED":
                return True
    return False


def test_mlflow_down_as_the_validation_starts_it_is_reported_once_and_slots_stay_free(loop):
    t0 = time.monotonic()
    r = Release(loop)
    seen: dict = {}

    def outage() -> None:
        wait_until(lambda: registered(r), 300, "the staging training's register task", every=0.2)
        old = loop.services["mlflow"]
        old.kill()  # down at once: the bot's next poll finds the run finished and MLflow gone
        down = time.monotonic()
        answers = []
        while time.monotonic() - down < OUTAGE_S - 5:  # a /help every 5 s: each needs a free worker slot
            asked, sent = r.comment("alice", "/help"), time.monotonic()
            wait_until(lambda a=asked: r.bot_comments("reply", f"{a.id}-0"), 30, "/help during the outage", every=0.1)
            answers.append(round(time.monotonic() - sent, 1))
            time.sleep(max(0.0, 5 - (time.monotonic() - sent)))
        seen["help_answered_s"] = answers
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        loop.add("mlflow", devstack_mlflow.start_again(old))
        seen["back"], seen["back_wall"], seen["down_s"] = time.monotonic(), time.time(), time.monotonic() - down

    r.up_to_the_approval_request(merged=outage)
    reported_s = time.monotonic() - seen["back"]
    wait_until(lambda: request_effects(r)["Slack approval request"], 60, "the Slack request", every=0.5)
    time.sleep(5)
    effects = request_effects(r)
    [release] = r.bot_comments("release", "churn")
    effects["validation reported"] = sum(1 for line in release.body.splitlines() if "validation passed" in line)
    workers = [s for n, s in loop.services.items() if n.startswith("worker")]
    retries = [e for w in workers for e in worker_lines(w) if e.get("event") == "task.retry"]
    [validation] = r.runs_of("validate")
    got = row(
        "(f) MLflow down 45 s as the validation starts",
        effects,
        time.monotonic() - t0,
        resume_s=round(reported_s, 1),
        outage_s=round(seen["down_s"], 1),
        help_answered_during_outage_s=seen["help_answered_s"],
        validation_started_after_back_s=round(validation["start_time"] / 1000 - seen["back_wall"], 1),
        retries=[{k: e.get(k) for k in ("task", "error", "countdown")} for e in retries],
        note=f"/help answered in ≤ {max(seen['help_answered_s'])} s while down; {len(retries)} retries via Celery",
    )
    assert not got["missing"] and not got["twice"], got
    assert retries, "the bot never met the outage: nothing was tested"
    assert max(seen["help_answered_s"]) < 10, got  # a free slot answers in seconds


# --- (g) ingest while a worker drains ---------------------------------------------------------------------------
@pytest.fixture
def jobs_stack(tmp_path):
    with setups.jobs(tmp_path, dict(SECRETS), worker_concurrency=2) as setup:
        yield setup


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def test_ingest_while_a_worker_drains_200_commands_every_one_answered_once(jobs_stack):
    """200 commands wait in the queue (the worker is stopped); a new worker drains them while more arrive: the
    receiver's answer times to those (the forge's delivery log), and every command answered once."""
    t0 = time.monotonic()
    forge = Forge(jobs_stack)
    pr, _ = pr_ready(jobs_stack, forge, "feature/chaos-drain")
    jobs_stack.services["worker"].stop()
    queued = [forge.comment(pr, "/help") for _ in range(200)]
    mine = set(queued)

    def ours() -> list[dict]:
        found = forge.call("GET", "/sandbox/deliveries", params={"event": "issue_comment", "payload": "1"})
        return [d for d in found["deliveries"] if json.loads(d["payload"] or "{}").get("comment", {}).get("id") in mine]

    wait_until(lambda: len([d for d in ours() if d["status_code"]]) >= 200, 120, "the backlog acknowledged", every=2)
    drain = time.monotonic()
    jobs_stack.add("worker-2", start_worker(jobs_stack.workdir, jobs_stack.env, concurrency=2, name="worker-2"))
    arriving: list[int] = []
    while len(set(forge.replies(pr)) & set(queued)) < 200 and time.monotonic() - drain < 300:
        arriving.append(forge.comment(pr, "/help"))  # ingest while the worker drains (the forge sends at once)
        mine.add(arriving[-1])
        time.sleep(0.05)
    drained_s = time.monotonic() - drain
    everything = queued + arriving
    wait_until(lambda: set(forge.replies(pr)) >= set(everything), 120, "every reply", every=2)
    time.sleep(3)
    replies = forge.replies(pr)
    during = [d for d in ours() if json.loads(d["payload"]).get("comment", {}).get("id") in set(arriving)]
    answers = [d["duration_ms"] for d in during if d["status"] == "OK"]
    p50, p99 = statistics.median(answers), percentile(answers, 99)
    got = row(
        "(g) ingest while a worker drains 200 queued commands",
        Counter({f"reply to {c}": replies[c] for c in everything}),
        time.monotonic() - t0,
        refused_503=sum(1 for d in during if d["status_code"] == 503),
        answer_ms_p50=p50,
        answer_ms_p99=p99,
        answer_ms_max=max(answers),
        arrived_while_draining=len(arriving),
        drain_s=round(drained_s, 1),
        note=f"{len(arriving)} arrived while draining: receiver p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
        f"200 drained in {drained_s:.0f} s (worker start included)",
    )
    got["effects"] = {f"comments answered {n} time(s)": k for n, k in Counter(replies[c] for c in everything).items()}
    assert len(answers) == len(arriving) and not got["missing"] and not got["twice"], got
    assert p99 < 1000, got
