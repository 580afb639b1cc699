"""Issue #20, "saved jobs only where runs happen", on real processes: private Redis, the sandbox forge (real git,
signed webhooks, request counts), the sandbox workspace (really runs the tasks, counts every request), the receiver
under gunicorn and a Celery worker. The bot authenticates with a token; the janitor is driven in-process with the
bot's own code, as the hourly task calls it.

The repository's workflows: `lint` runs on a push, `test` on a pull request, `train` on `/train`. Databricks keeps
10,000 saved jobs a workspace ("Jobs | Saved jobs | 10000 | Workspace", docs.databricks.com/aws/en/resources/limits):
a push made a job of every workflow, whether or not it ever ran; now a job is made by the first run that needs it,
and the janitor removes one the bot has not run for `[bot] job_ttl_days`.
"""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request

import pytest
import redis
import requests
from github import Auth, Github

from core.celery_app import create_celery
from core.config import load_config
from core.events import Event
from devstack import waiting
from handlers import router
from tests.support.pushes import push_new_commit, push_url
from tests.support.stacks import bot_stack, workspace_client
from workers.core.context import Deps
from workers.core.state import State
from workers.gateways.forge import Forge
from workers.gateways.workspace import Workspace
from workers.jobs import janitor
from workers.jobs.branch_jobs import upsert_job

REPO = "acme/tiny-ml"
PREFIX = f"mlops-bot/{REPO}"
TOKENS = {"alice": "ghp_alice", "bob": "ghp_bob", "carol": "ghp_carol"}
DAY = 86400
LINT = """
    [workflows.lint]
    run_on = ["push"]
    [workflows.lint.environments.default]
    environment_version = "4"
    [[workflows.lint.tasks]]
    key = "prepare"
    file = "steps/prepare.py"
    parameters = ["--dataset", "toy", "--branch", "{branch}"]
    """


def wait_until(check, timeout=90.0):
    return waiting.wait_until(check, timeout, every=0.3)


@pytest.fixture(scope="module")
def ops(redis_server, empty_redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lazy")
    with bot_stack(tmp, redis_server.url, config=lambda text: text + textwrap.dedent(LINT)) as stack:
        stack.forge.tmp = tmp
        yield stack


@pytest.fixture
def bot(ops, monkeypatch, redis_server):
    """The bot's own settings, state and gateways, for the janitor; its GitHub gateway signs in as carol, whom
    nothing else in this module uses: the forge's count of carol's requests is the janitor's."""
    for name, value in ops.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JANITOR_GITHUB_TOKEN", TOKENS["carol"])
    settings = load_config(ops.config)
    forge = Forge(settings.github.model_copy(update={"token_env": "JANITOR_GITHUB_TOKEN"}))
    state = State(redis.Redis.from_url(redis_server.url))
    return settings, state, lambda env: Workspace(env, settings.environments[env]), forge


def as_user(ops, login: str) -> Github:
    return Github(base_url=ops.forge.url, auth=Auth.Token(TOKENS[login]), seconds_between_requests=0,
                  seconds_between_writes=0)  # fmt: skip


def push_branch(ops, branch: str) -> str:
    checkout = ops.forge.tmp / f"alice-{branch.replace('/', '-')}"
    return push_new_commit(push_url(ops.forge.url, REPO, "alice", TOKENS["alice"]), checkout, branch, "alice")


def worker_log(ops, event: str, **match) -> list[dict]:
    lines = []
    for line in (ops.forge.tmp / "worker.log").read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == event and all(entry.get(k) == v for k, v in match.items()):
            lines.append(entry)
    return lines


def branch_jobs(ops, branch: str) -> list[str]:
    return sorted(j.settings.name for j in workspace_client(ops.workspace.url).jobs.list()
                  if j.settings.name.startswith(f"{PREFIX}/{branch}/"))  # fmt: skip


def workspace_writes(ops) -> dict[str, int]:
    with urllib.request.urlopen(ops.workspace.url + "/sandbox/requests") as answer:
        counts = json.load(answer)
    return {k: v for k, v in counts.get("counts", counts).items() if k.startswith("POST")}


def reset_counts(url: str) -> None:
    requests.post(f"{url}/sandbox/requests/reset").raise_for_status()


def trained(state: State, pr: int, runs: int) -> bool:
    """The PR's first `runs` train runs were started and followed to their end (the bot's own run records)."""
    found = train_runs(state, pr)
    return len(found) >= runs and all(r.finished_at for r in found[:runs])


def train_runs(state: State, pr: int) -> list:
    return [r for r in state.pr_runs(REPO, pr) if r.workflow == "train"]


# --- made when first needed ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def story(ops, redis_server):
    """alice pushes feature/lazy, opens a PR, comments `/train toy` twice; what the workspace held at each step."""
    state, seen = State(redis.Redis.from_url(redis_server.url)), {}
    push_branch(ops, "feature/lazy")
    wait_until(lambda: worker_log(ops, "branch.synced", branch="feature/lazy"))
    wait_until(lambda: f"{PREFIX}/feature/lazy/lint" in state.job_last_runs("dev"))  # the push's run of lint
    seen["push"] = branch_jobs(ops, "feature/lazy")
    pr = as_user(ops, "alice").get_repo(REPO).create_pull(title="lazy", body="", head="feature/lazy", base="main")
    wait_until(lambda: [r for r in state.pr_runs(REPO, pr.number) if r.workflow == "test"])
    seen["pull_request"] = branch_jobs(ops, "feature/lazy")
    reset_counts(ops.workspace.url)
    pr.as_issue().create_comment("/train toy")
    wait_until(lambda: trained(state, pr.number, 1), timeout=150)
    seen["first /train"], seen["first writes"] = branch_jobs(ops, "feature/lazy"), workspace_writes(ops)
    reset_counts(ops.workspace.url)
    pr.as_issue().create_comment("/train toy")
    wait_until(lambda: trained(state, pr.number, 2), timeout=150)
    seen["second /train"], seen["second writes"] = branch_jobs(ops, "feature/lazy"), workspace_writes(ops)
    seen["pr"] = pr.number
    return seen


def test_a_push_makes_only_the_jobs_of_the_workflows_it_starts(story):
    assert story["push"] == [f"{PREFIX}/feature/lazy/lint"]  # not `test` (a pull request's), not `train` (a command's)
    assert story["pull_request"] == [f"{PREFIX}/feature/lazy/lint", f"{PREFIX}/feature/lazy/test"]


def test_the_first_train_makes_the_train_job_and_runs_it_the_second_reuses_it(story, redis_server):
    made = [f"{PREFIX}/feature/lazy/{w}" for w in ("lint", "test", "train")]
    assert story["first /train"] == made and story["second /train"] == made
    assert story["first writes"] == {"POST /api/2.2/jobs/create": 1, "POST /api/2.2/jobs/run-now": 1}
    assert story["second writes"] == {"POST /api/2.2/jobs/run-now": 1}  # 1.00 Databricks write per command
    first, second = train_runs(State(redis.Redis.from_url(redis_server.url)), story["pr"])
    assert first.job_id == second.job_id and first.run_id != second.run_id


def test_a_first_command_delivered_three_times_makes_one_job_and_one_run(ops, redis_server):
    """The live delivery, GitHub's redelivery of it (same guid: the receiver answers "duplicate"), and its task
    handed out twice more, as a broker does when a worker's ack is lost: one `train` job, one run."""
    push_branch(ops, "feature/again")
    pr = as_user(ops, "alice").get_repo(REPO).create_pull(title="again", body="", head="feature/again", base="main")
    comment = pr.as_issue().create_comment("/train toy")
    delivery = wait_until(lambda: next(iter(_comment_deliveries(ops, comment.id)), None), timeout=30)
    again = requests.post(f"{ops.forge.url}/sandbox/deliveries/{delivery['guid']}/redeliver")
    assert again.status_code == 202
    event = Event("github", "issue_comment", "created", delivery["guid"], delivery["payload"])
    [action] = router.dispatch(event, load_config(ops.config))
    celery = create_celery(redis_server.url)
    for _ in range(2):
        celery.send_task(action.task, kwargs=action.kwargs)
    state = State(redis.Redis.from_url(redis_server.url))
    wait_until(lambda: trained(state, pr.number, 1), timeout=150)
    time.sleep(2)  # the handed-out copies finish too
    [run] = train_runs(state, pr.number)
    [job] = workspace_client(ops.workspace.url).jobs.list(name=f"{PREFIX}/feature/again/train")
    assert [r.run_id for r in workspace_client(ops.workspace.url).jobs.list_runs(job_id=job.job_id)] == [run.run_id]
    answers = [d["status_code"] for d in _comment_deliveries(ops, comment.id)]
    assert len(answers) == 2 and set(answers) <= {200, 202}  # the redelivery was answered, and started nothing


def _comment_deliveries(ops, comment_id: int) -> list[dict]:
    url = f"{ops.forge.url}/sandbox/deliveries?event=issue_comment&payload=1"
    listed = requests.get(url).json()["deliveries"]
    for d in listed:  # the body as the forge sent it (JSON text)
        d["payload"] = json.loads(d["payload"]) if isinstance(d.get("payload"), str) else d.get("payload") or {}
    return [d for d in listed if d["payload"].get("comment", {}).get("id") == comment_id]


# --- the janitor -----------------------------------------------------------------------------------------------------
def carols_requests(ops) -> dict[str, int]:
    return requests.get(f"{ops.forge.url}/sandbox/requests").json()["by_user_route"].get("carol", {})


def test_the_janitor_removes_a_job_not_run_for_the_ttl_and_keeps_one_that_ran_recently(story, bot, ops):
    """`lint` ran once, on the push; `train` first ran later, then again. An hour before the second `/train` is
    job_ttl_days old, `lint` goes and `train` stays — though `train` was made more than job_ttl_days before."""
    settings, state, workspaces, forge = bot
    ttl = settings.bot.job_ttl_days * DAY
    first, second = train_runs(state, story["pr"])
    lint_ran = state.job_last_runs("dev")[f"{PREFIX}/feature/lazy/lint"]
    assert lint_ran < first.started_at < second.started_at - 1  # the story's order, a second apart at least
    now = second.started_at + ttl - 1
    removed = janitor.clean_up(workspaces, state, settings, janitor.branch_answers(forge, settings), now=now)
    why = {r.job: r.why for r in removed}
    assert why[f"{PREFIX}/feature/lazy/lint"] == f"no run for {settings.bot.job_ttl_days} days"
    assert f"{PREFIX}/feature/lazy/train" not in why
    assert f"{PREFIX}/feature/lazy/train" in branch_jobs(ops, "feature/lazy")
    assert f"{PREFIX}/feature/lazy/lint" not in branch_jobs(ops, "feature/lazy")


def test_with_a_token_the_janitor_lists_branches_once_a_repository_never_once_a_branch(story, bot, ops):
    settings, state, workspaces, forge = bot
    reset_counts(ops.forge.url)
    janitor.clean_up(workspaces, state, settings, janitor.branch_answers(forge, settings))
    assert carols_requests(ops) == {"GET /repos/{owner}/{repo}/branches": 1}  # several branches have jobs


def test_as_a_github_app_the_janitor_makes_no_github_request(story, bot, ops):
    settings, state, workspaces, forge = bot
    app = settings.github.model_copy(update={"app_id": 123, "installation_id": 456})
    as_app = settings.model_copy(update={"github": app})
    reset_counts(ops.forge.url)
    janitor.clean_up_and_tell(Deps(as_app, state, workspaces, forge, None, lambda: None, None))
    assert carols_requests(ops) == {}


def test_the_janitor_removes_nothing_while_github_rate_limits(bot, ops):
    settings, state, workspaces, forge = bot
    made = [janitor_job(bot, branch) for branch in ("feature/janitor-live", "janitor/gone")]
    push_branch(ops, "feature/janitor-live")
    add_fault(ops, f"GET:/repos/{REPO}/branches=primary,wait=30")  # the listing, for 30 s
    try:
        assert janitor.clean_up(workspaces, state, settings, janitor.branch_answers(forge, settings)) == []
    finally:
        requests.delete(f"{ops.forge.url}/sandbox/faults")
    removed = {r.job for r in janitor.clean_up(workspaces, state, settings, janitor.branch_answers(forge, settings))}
    assert made[1] in removed and made[0] not in removed  # janitor/gone was never pushed: surely gone


def test_the_janitor_keeps_a_branch_whose_name_needs_encoding(bot, ops):
    settings, state, workspaces, forge = bot
    branch = "fix#12+100%"  # git allows these; in a URL they must be percent-encoded
    made = janitor_job(bot, branch)
    push_branch(ops, branch)
    removed = {r.job for r in janitor.clean_up(workspaces, state, settings, janitor.branch_answers(forge, settings))}
    assert made not in removed and made in branch_jobs(ops, branch)


def janitor_job(bot, branch: str) -> str:
    """The branch's `train` job, as a `/train` makes it (no run)."""
    settings, state, workspaces, _ = bot
    return upsert_job(workspaces("dev"), state, settings, settings.repo(REPO), branch, "train", "a" * 40).name


def add_fault(ops, spec: str) -> None:
    assert requests.post(f"{ops.forge.url}/sandbox/faults", json={"spec": spec}).status_code == 201
