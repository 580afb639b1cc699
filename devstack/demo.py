"""`python -m devstack demo` (`make demo`): the release train on this machine, with nothing but this repository.

It starts a private Redis, a real MLflow server (tracking), the sandbox forge (hosting acme/churn-model,
the example project), the sandbox Databricks workspace (jobs, and the Unity Catalog registry the real
`MlflowClient(registry_uri="databricks-uc")` talks to), the sandbox Slack, and the bot's web process and
worker. `prod.ml.churn` v1 is the champion of an earlier release. Then people act through the forge's API,
as GitHub users would:

  1. alice pushes feature/better-features  → no job yet: the demo's workflows start on a pull request or a command,
                                             and a branch's job is made by the first run that needs it
  2. alice opens a PR                      → the `test` job is made and runs, status on the commit
  3. alice comments /train toy             → the `train` job is made and trains in dev (`dev.ml.churn`); the report
                                             compares with prod's champion
  4. bob merges the PR                     → the merge commit trains on full data in staging (`staging.ml.churn`),
                                             validated against the prod champion on the same data → approval asked
  5. alice's /approve is refused (four eyes); bob's /approve → copied into `prod.ml.churn`, `champion` moves,
                                             deploy runs in prod, GitHub deployment statuses
  6. bob comments /rollback prod           → `champion` goes back to v1, deploy runs again

It prints each step as it happens, then the PR conversation, the three registries and the audit trail,
and exits 0 only if every step did what it should (the prod alias moves only after merge, validation
and approval).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devstack import principals
from devstack.processes import ServiceError
from devstack.sandboxes import WORKSPACE_TOKEN
from devstack.setups import EXAMPLE, REPO, SECRETS, USERS, Setup, whole_loop
from devstack.waiting import TimedOut, wait_until

BRANCH = "feature/better-features"
DEV, STAGING, PROD = "dev.ml.churn", "staging.ml.churn", "prod.ml.churn"
ALICE_GIT = {
    "GIT_AUTHOR_NAME": "Alice",
    "GIT_AUTHOR_EMAIL": "alice@acme.test",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@acme.test",
}
STEP_TIMEOUT = 120


class Story:
    """`patience` stretches every wait: a test on a busy machine (several stacks on two cores) passes 2 or 3."""

    def __init__(self, stack: Setup, out=print, patience: float = 1.0):
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config
        from github import Auth, Github

        self.stack, self.out, self.patience = stack, out, patience
        # The sandbox has no host metadata endpoint; the SDK's warning about it is noise here.
        logging.getLogger("databricks.sdk").setLevel(logging.ERROR)
        self.gh = {
            u: Github(
                base_url=stack.url("forge"), auth=Auth.Token(t), seconds_between_requests=0, seconds_between_writes=0
            )
            for u, t in USERS.items()
        }
        self.ws = WorkspaceClient(
            config=Config(host=stack.url("workspace"), token=WORKSPACE_TOKEN, auth_type="pat", retry_timeout_seconds=30)
        )
        self.mlflow = uc_client(stack)
        self.started = time.monotonic()
        self.results: list[tuple[str, bool, float]] = []
        self.pr = None
        self.sha = ""

    # --- helpers -------------------------------------------------------------------------------
    def wait(self, what: str, check, timeout: float = STEP_TIMEOUT):
        return wait_until(check, timeout * self.patience, what, every=0.25)

    def repo(self, user: str = "bob"):
        return self.gh[user].get_repo(REPO)

    def say(self, text: str) -> None:
        self.out(f"      {text}")

    def step(self, title: str, fn) -> bool:
        t0 = time.monotonic()
        self.out(f"\n▶ {title}")
        try:
            fn()
            ok = True
        except (TimedOut, AssertionError) as exc:
            self.say(f"✗ {exc}")
            ok = False
        took = time.monotonic() - t0
        self.results.append((title, ok, took))
        self.out(f"  {'✓' if ok else '✗'} {took:.1f} s")
        return ok

    def branch_jobs(self) -> list[str]:
        return sorted(j.settings.name for j in self.ws.jobs.list() if f"/{BRANCH}/" in (j.settings.name or ""))

    def bot_comments(self, kind: str, key: str = "") -> list:
        marker = f"<!-- mlops-bot:{kind} key={key}"
        return [
            c
            for c in self.repo().get_issue(self.pr.number).get_comments()
            if c.user.login == "mlops-bot" and marker in c.body
        ]

    def comment(self, user: str, body: str):
        c = self.repo(user).get_issue(self.pr.number).create_comment(body)
        self.say(f"@{user} commented `{body}`")
        return c

    def status(self, context: str) -> str | None:
        found = [s for s in self.repo().get_commit(self.sha).get_statuses() if s.context == context]
        return found[0].state if found else None

    def delivery_answer(self, event: str) -> str | None:
        """What the receiver answered the forge's newest `event` delivery (from the forge's own log)."""
        with urllib.request.urlopen(f"{self.stack.url('forge')}/sandbox/deliveries?event={event}") as r:
            deliveries = json.load(r)
        deliveries = deliveries.get("deliveries", deliveries) if isinstance(deliveries, dict) else deliveries
        done = [d for d in deliveries if d.get("status_code")]
        if not done:
            return None
        d = done[-1]
        return f"{d['status_code']} {str(d.get('response_body', ''))[:100].strip()} ({d.get('duration_ms', 0):.0f} ms)"

    # --- the six steps -------------------------------------------------------------------------
    def push_branch(self) -> None:
        url = self.stack.url("forge").replace("http://", f"http://alice:{USERS['alice']}@") + f"/{REPO}.git"
        checkout = self.stack.workdir / "alice-checkout"

        def git(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["git", *args],
                cwd=checkout if args[0] != "clone" else self.stack.workdir,
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, **ALICE_GIT},
            )

        git("clone", "-q", url, str(checkout))
        git("checkout", "-q", "-b", BRANCH)
        notes = checkout / "NOTES.md"
        notes.write_text("Better features: deeper trees, more estimators (default params).\n")
        git("add", "-A")
        git("commit", "-qm", "Better features")
        git("push", "-q", "origin", BRANCH)
        self.sha = git("rev-parse", "HEAD").stdout.strip()
        self.say(f"alice: git push origin {BRANCH}  ({self.sha[:7]})")
        self.say(
            f"receiver answered the push webhook: {self.wait('the push delivery', lambda: self.delivery_answer('push'), 20)}"
        )
        [synced] = self.wait("the push's job sync", lambda: self.worker_logged("branch.synced", branch=BRANCH))
        outcomes = ", ".join(f"{name.rsplit('/', 1)[-1]} {outcome}" for name, outcome in synced["jobs"].items())
        self.say(f"the worker's sync of the branch's jobs: {outcomes}")
        # a job is made by the first run that needs it (issue #20); validate and deploy run from main only (issue #18)
        assert self.branch_jobs() == [], f"the push made jobs nothing runs: {self.branch_jobs()}"
        self.say("jobs for the branch: none yet (train waits for /train, test for the pull request)")

    def worker_logged(self, event: str, **match: str) -> list[dict]:
        """The worker's log lines (JSON) of `event` whose fields match."""
        found = []
        for line in (self.stack.workdir / "worker.log").read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event and all(entry.get(k) == v for k, v in match.items()):
                found.append(entry)
        return found

    def jobs_now(self, expected: list[str]) -> None:
        """The branch's jobs are exactly `expected` (workflow names), each made by its first run."""
        jobs = self.branch_jobs()
        for name in jobs:
            self.say(f"job  {name}")
        assert [j.rsplit("/", 1)[-1] for j in jobs] == expected, f"the branch's jobs: {jobs}, expected {expected}"

    def open_pr(self) -> None:
        self.pr = self.repo("alice").create_pull(
            title="Better features", body="Deeper trees.", head=BRANCH, base="main"
        )
        self.say(f"alice opened PR #{self.pr.number}")
        state = self.wait(
            "the test status",
            lambda: self.status("mlops-bot/test") if self.status("mlops-bot/test") in ("success", "failure") else None,
        )
        [report] = self.wait("the test report", lambda: self.bot_comments("report", "test"))
        self.say(f"commit status mlops-bot/test: {state}")
        self.say(report.body.splitlines()[1])
        assert state == "success", "the test workflow did not succeed"
        self.jobs_now(["test"])

    def train(self) -> None:
        self.comment("alice", "/train toy")
        [report] = self.wait(
            "the train report",
            lambda: (
                [r for r in self.bot_comments("report", "train") if "SUCCESS" in r.body or "FAILED" in r.body] or None
            ),
            150,
        )
        for line in report.body.splitlines()[1:]:
            if line.startswith(("|", "####", "**", "[")):
                self.say(line)
        assert "SUCCESS" in report.body.splitlines()[1] or "— SUCCESS" in report.body, "training did not succeed"
        assert "Metrics vs champion" in report.body, "no champion comparison in the report"
        state = self.wait(
            "the train status",
            lambda: (
                self.status("mlops-bot/train") if self.status("mlops-bot/train") in ("success", "failure") else None
            ),
        )
        self.say(f"commit status mlops-bot/train: {state}")
        dev = self.mlflow.search_model_versions(f"name='{DEV}'")
        self.say(
            f"registry: {DEV} v{max(int(v.version) for v in dev)} (a PR's model); {PROD}@champion: v{self.champion()}"
        )
        assert self.champion() == "1", "a pull request's training moved the prod champion"
        self.jobs_now(["test", "train"])

    def champion(self) -> str:
        return self.mlflow.get_model_version_by_alias(PROD, "champion").version

    def deploy_states(self, environment: str) -> list[str]:
        """The statuses of the newest GitHub deployment to `environment`, oldest first."""
        found = list(self.repo().get_deployments(environment=environment))
        return [s.state for s in reversed(list(found[0].get_statuses()))] if found else []

    def merge(self) -> None:
        merged = self.repo("bob").get_pull(self.pr.number).merge(merge_method="merge")
        self.say(f"bob merged PR #{self.pr.number} → merge commit {merged.sha[:7]}")
        self.wait("the branch's jobs to go", lambda: self.branch_jobs() == [])
        self.say(f"jobs left for {BRANCH}: none")
        [ask] = self.wait("the approval request on the merged PR", lambda: self.bot_comments("approval"), 240)
        self.version = re.search(r"key=staging\.ml\.churn@(\d+)", ask.body).group(1)
        v = self.mlflow.get_model_version(STAGING, self.version)
        self.say(f"registry: {STAGING} v{v.version} validation_status={v.tags.get('validation_status')}")
        for line in ask.body.splitlines():
            if line.startswith(("Validation data", "| accuracy", "| roc_auc", "| gate")):
                self.say(line)
        with urllib.request.urlopen(f"{self.stack.url('slack')}/sandbox/messages") as r:
            asks = [m for m in json.load(r)["messages"] if "Approve" in json.dumps(m.get("blocks", []))]
        self.say(f"slack #{asks[-1]['channel_name']}: {asks[-1]['text'].splitlines()[0]}" if asks else "slack: none")
        self.say(f"staging deployment: {' → '.join(self.deploy_states('staging'))}")
        assert v.tags.get("validation_status") == "passed", "validation did not pass"
        assert asks, "no approval request in Slack"
        assert self.champion() == "1", "the prod champion moved before anyone approved"

    def approve(self) -> None:
        c = self.comment("alice", "/approve")
        refusal = self.wait("alice's refusal", lambda: self.bot_comments("reply", f"{c.id}-0"))[0]
        self.say("bot: " + refusal.body.splitlines()[-1])
        assert "four eyes" in refusal.body, "alice approved her own change"
        c = self.comment("bob", "/approve")
        answer = self.wait("bob's approval", lambda: self.bot_comments("reply", f"{c.id}-0"))[0]
        self.say("bot: " + answer.body.splitlines()[-1])
        self.promoted = self.champion()
        v = self.mlflow.get_model_version(PROD, self.promoted)
        self.say(f"registry: {PROD}@champion → v{v.version} (copied from {v.tags.get('copied_from')})")
        states = self.wait(
            "the prod deployment", lambda: (s := self.deploy_states("prod")) and s[-1] in ("success", "failure") and s
        )
        self.say(f"prod deployment: {' → '.join(states)}")
        assert self.promoted != "1", "the champion alias did not move"
        assert states[-1] == "success", "deploy to prod failed"

    def rollback(self) -> None:
        c = self.comment("bob", "/rollback prod")
        answer = self.wait("the rollback", lambda: self.bot_comments("reply", f"{c.id}-0"))[0]
        self.say("bot: " + answer.body.splitlines()[-1])
        self.say(f"registry: {PROD}@champion → v{self.champion()}")
        self.wait("the redeploy", lambda: self.mlflow.get_model_version(PROD, "1").tags.get("deployed_prod_by"))
        self.say(f"prod deployment: {' → '.join(self.deploy_states('prod'))}")
        assert self.champion() == "1", "the champion alias did not go back"
        [release] = self.bot_comments("release", "churn")
        rows = [r.split("|") for r in release.body.splitlines() if r.startswith("| ") and not r.startswith("| Stage")]
        for row in rows[:4]:
            self.say(f"release comment: {row[1].strip():<9} {row[3].strip()[:110]}")

    def run(self) -> bool:
        steps = [
            ("1. alice pushes feature/better-features → no job yet: a job is made by its first run", self.push_branch),
            ("2. alice opens a PR → the test job is made and runs, status on the commit", self.open_pr),
            (
                "3. alice comments /train toy → the train job is made, trains in dev; the report vs prod's champion",
                self.train,
            ),
            (
                "4. bob merges → staging trains the merge commit on full data, validates it against the champion",
                self.merge,
            ),
            ("5. alice's /approve is refused (four eyes); bob's /approve → prod: copy, alias, deploy", self.approve),
            ("6. bob comments /rollback prod → the champion goes back, deploy runs again", self.rollback),
        ]
        for title, fn in steps:
            if not self.step(title, fn):
                return False
        return True

    # --- the closing picture -------------------------------------------------------------------
    def transcript(self) -> None:
        if not self.pr:
            return
        self.out(f"\n── PR #{self.pr.number} conversation ──")
        for c in self.repo().get_issue(self.pr.number).get_comments():
            body = c.body.split("-->", 1)[-1].strip() if c.body.startswith("<!--") else c.body
            first = body.splitlines()[0] if body else ""
            self.out(f"  @{c.user.login:<10} {first[:110]}")

    def registry(self) -> None:
        from mlflow.exceptions import RestException

        for name in (DEV, STAGING, PROD):
            self.out(f"\n── registry: {name} (Unity Catalog) ──")
            try:
                found_versions = self.mlflow.search_model_versions(f"name='{name}'")
            except RestException as exc:  # a story that stopped early registered nothing there
                self.out(f"  ({exc.error_code})")
                continue
            for found in sorted(found_versions, key=lambda v: int(v.version)):
                v = self.mlflow.get_model_version(name, found.version)  # search results carry no aliases or tags
                keys = ("pr", "validation_status", "approved_by", "copied_from", "deployed_prod_by")
                tags = {k: v.tags[k] for k in keys if k in v.tags}
                self.out(f"  v{v.version}  aliases={list(v.aliases)}  {tags}")

    def audit(self) -> None:
        import redis

        from core import audit

        self.out("\n── audit trail ──")
        for e in audit.entries(redis.Redis.from_url(self.stack.services["redis"].url)):
            self.out("  " + audit.format_entry(e))


def uc_env(stack: Setup, token: str = WORKSPACE_TOKEN) -> dict[str, str]:
    """What MLflow's Unity Catalog client needs to reach the sandbox workspace's registry (as its admin, or as
    the principal whose `token` it is)."""
    return {"DATABRICKS_HOST": stack.url("workspace"), "DATABRICKS_TOKEN": token}


def uc_client(stack: Setup):
    from mlflow.tracking import MlflowClient

    os.environ.update(uc_env(stack))  # the UC store reads the workspace and its token from the environment
    return MlflowClient(tracking_uri=stack.url("mlflow"), registry_uri="databricks-uc")


def seed_champion(stack: Setup, out=print) -> str:
    """An earlier release: a model trained on main with weak settings, approved long ago, prod's champion.

    Registered as the prod principal, which so owns `prod.ml.churn` (its deploys move the `prod` alias)."""
    work = stack.workdir / "champion"
    shutil.copytree(EXAMPLE, work)
    env = {
        **os.environ,
        **uc_env(stack, principals.TOKENS[principals.PROD]),
        "MLFLOW_TRACKING_URI": stack.url("mlflow"),
        "MLFLOW_REGISTRY_URI": "databricks-uc",
        "PYTHONPATH": str(work / "src"),
    }
    argv = ["--dataset", "toy", "--param", "n_estimators=10", "--param", "max_depth=1", "--register"]
    argv += ["--model-name", PROD, "--repo", REPO, "--branch", "main", "--triggered-by", "carol"]
    subprocess.run(
        [sys.executable, "-m", "churn_model.cli", *argv], cwd=work, env=env, check=True, capture_output=True, text=True
    )
    client = uc_client(stack)
    client.set_registered_model_alias(PROD, "champion", "1")
    client.set_model_version_tag(PROD, "1", "approved_by", "bob")
    return "1"


def _show(name: str, service) -> None:
    print(f"  {name:<9} {service.url or f'pid {service.process.pid}'}")


def _play(stack: Setup, started: float) -> bool:
    """The six steps, then the closing picture and the timings; True if every step did what it should."""
    story = Story(stack)
    ok = story.run()
    story.transcript()
    story.registry()
    story.audit()
    total = time.monotonic() - started
    timings = ", ".join(f"step {title.split('.')[0]}: {took:.0f} s" for title, _, took in story.results)
    print(f"\n{'demo passed' if ok else 'demo FAILED'} in {total:.0f} s ({timings})")
    return ok


def _keep_running(stack: Setup) -> None:
    print(
        f"\n--keep: dashboard {stack.url('web')}/?token={SECRETS['MLOPS_BOT_DASHBOARD_TOKEN']}\n"
        f"        MLflow UI {stack.url('mlflow')}\n        forge     {stack.url('forge')}/{REPO}/pull/1\n"
        f"        logs      {stack.workdir}\nCtrl-C stops everything."
    )
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # so sigwait receives them
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    print("stopping everything…")


def run_demo(keep: bool = False, workdir: Path | None = None) -> int:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="mlops-bot-demo-"))
    started = time.monotonic()
    print(f"mlops-bot demo — everything runs under {workdir}\n")
    stack: Setup | None = None
    ok = False
    try:
        stack = whole_loop(workdir, say=_show)
        seed_champion(stack)
        print(f"  champion  {PROD} v1 (an earlier release: trained on main with weak settings, approved by bob)")
        print(f"  ready in {time.monotonic() - started:.1f} s")
        ok = _play(stack, started)
        if keep:
            _keep_running(stack)
        return 0 if ok else 1
    except (ServiceError, subprocess.CalledProcessError, OSError) as exc:
        print(f"\na service did not start: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if stack:
            stack.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)  # nothing left behind
        else:  # keep the logs of a failed run for whoever looks into it
            print(f"\nlogs: {workdir}  (worker.log, web.log, workspace.log, forge.log, mlflow.log)")
