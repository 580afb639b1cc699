"""Per-branch jobs against the sandbox workspace, over HTTP through databricks-sdk, with a real Redis."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from devstack.mlrepo import branch, make_repo
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.support.stacks import bot_settings, finished_run, service_fixture, workspace_client
from workers.core.run_records import RunResult
from workers.core.state import State
from workers.errors import Permanent
from workers.jobs import branch_jobs, janitor
from workers.jobs import results as run_results

sandbox = service_fixture(start_workspace, "ws")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("git") / "tiny-ml")


@pytest.fixture
def world(sandbox, repo, redis_client, tmp_path, monkeypatch):
    """Settings, Redis state and a workspace factory for this test, on an empty workspace."""
    monkeypatch.setenv("SANDBOX_DATABRICKS_TOKEN", WORKSPACE_TOKEN)
    settings, workspaces = bot_settings(tmp_path / "config.toml", sandbox.url, repo)
    client = workspace_client(sandbox.url)
    for job in client.jobs.list():
        client.jobs.delete(job.job_id)
    requests_reset(sandbox.url)
    return settings, State(redis_client), workspaces, client


def requests_reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url + "/sandbox/requests/reset", method="POST")).close()


def writes(url: str) -> dict[str, int]:
    counts = json.load(urllib.request.urlopen(url + "/sandbox/requests"))
    counts = counts.get("counts", counts)
    return {k: v for k, v in counts.items() if k.startswith("POST")}


def start(workspaces, state, settings, **run) -> branch_jobs.Started:
    """Start acme/tiny-ml's `train` workflow (`run`: branch, sha, trigger and any option of start_run)."""
    return branch_jobs.start_run(workspaces, state, settings, **{"repo": "acme/tiny-ml", "workflow": "train", **run})


def names(client) -> list[str]:
    return sorted(j.settings.name for j in client.jobs.list())


def finish(workspaces, state, run_id: int, timeout: float = 60) -> RunResult:
    """Follow a run the way the follow_run task does: one poll per call, never sleeping inside."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.monotonic()
        finished, result, delay = run_results.follow(workspaces("dev"), state, run_id)
        assert time.monotonic() - started < 2, "a poll must not wait for the run"
        if finished:
            return result
        assert delay >= 2
        time.sleep(0.2)
    raise AssertionError("run did not finish")


def sync(workspaces, state, settings, branch_name: str, sha: str, event: str = "push") -> list[str]:
    """sync_branch's outcome for each of the branch's workflows, in config order (train, test)."""
    done = branch_jobs.sync_branch(workspaces, state, settings, "acme/tiny-ml", branch_name, sha, event)
    return [u.outcome for u in done]


def test_a_push_makes_no_job_a_pull_request_makes_its_own_and_a_push_updates_what_exists(world, sandbox, repo):
    """train runs on a command and test on a pull request: a push starts neither, so it makes neither job."""
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/x")
    assert sync(workspaces, state, settings, "feature/x", sha) == ["absent", "absent"]
    assert names(client) == [] and writes(sandbox.url) == {}

    assert sync(workspaces, state, settings, "feature/x", sha, "pull_request") == ["absent", "created"]
    [job] = [client.jobs.get(j.job_id) for j in client.jobs.list()]
    assert job.settings.name == "mlops-bot/acme/tiny-ml/feature/x/test"
    assert job.settings.tags["mlops-bot"] == "managed" and job.settings.tags["sha"] == sha
    assert [t.task_key for t in job.settings.tasks] == ["prepare"]

    requests_reset(sandbox.url)
    assert sync(workspaces, state, settings, "feature/x", sha) == ["absent", "unchanged"]
    assert writes(sandbox.url) == {}  # the cached id and fingerprint answer without any write

    state.r.flushdb()  # lose the cache: found again by name, still no write
    assert sync(workspaces, state, settings, "feature/x", sha) == ["absent", "unchanged"]
    assert writes(sandbox.url) == {}

    newer = branch(repo, "feature/x")  # a push brings the job the branch has to its newest commit, makes no other
    assert sync(workspaces, state, settings, "feature/x", newer) == ["absent", "reset"]
    assert writes(sandbox.url) == {"POST /api/2.2/jobs/reset": 1}
    assert names(client) == ["mlops-bot/acme/tiny-ml/feature/x/test"]
    assert client.jobs.get(job.job_id).settings.tags["sha"] == newer


def test_two_concurrent_upserts_give_one_job(world):
    settings, state, workspaces, client = world
    repo = settings.repo("acme/tiny-ml")
    results, errors = [], []

    def upsert():
        try:
            results.append(branch_jobs.upsert_job(workspaces("dev"), state, settings, repo, "race", "train", "a" * 40))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upsert) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert names(client) == ["mlops-bot/acme/tiny-ml/race/train"]
    assert len({r.job_id for r in results}) == 1


@pytest.mark.parametrize(
    "odd",
    [
        "feature/ünïcode-ß",
        "UPPER/Case",
        "upper/case",
        "a/b/c/d/e",
        "x" * 200,
        "fix/#123-stuff",
        "dots.and_under-scores",
    ],
)
def test_odd_branch_names_give_valid_unique_stable_jobs(world, odd):
    settings, state, workspaces, client = world
    repo = settings.repo("acme/tiny-ml")
    made = branch_jobs.upsert_job(workspaces("dev"), state, settings, repo, odd, "train", "a" * 40)
    again = branch_jobs.upsert_job(workspaces("dev"), state, settings, repo, odd, "train", "a" * 40)
    assert made.job_id == again.job_id and again.outcome == "unchanged"
    assert client.jobs.get(made.job_id).settings.name == f"mlops-bot/acme/tiny-ml/{odd}/train"


def test_branches_differing_only_in_case_get_separate_jobs(world):
    settings, state, workspaces, client = world
    repo = settings.repo("acme/tiny-ml")
    a = branch_jobs.upsert_job(workspaces("dev"), state, settings, repo, "Feature", "train", "a" * 40)
    state.r.flushdb()
    b = branch_jobs.upsert_job(workspaces("dev"), state, settings, repo, "feature", "train", "a" * 40)
    assert a.job_id != b.job_id and b.outcome == "created"


def test_toy_run_executes_the_branch_code_and_succeeds(world, repo):
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/run")
    started = start(
        workspaces,
        state,
        settings,
        branch="feature/run",
        sha=sha,
        trigger="d-1:0",
        pr=7,
        dataset="toy",
        params={"lr": "0.1"},
    )
    result = finish(workspaces, state, started.run_id)
    assert result.result == "SUCCESS"
    assert [t.key for t in result.tasks] == ["prepare", "train"]
    assert all(t.result == "SUCCESS" for t in result.tasks)
    assert result.used_commit == sha
    assert '"score": 90' in result.tasks[1].output  # 2 * sum(range(10)) from the branch's own package
    assert f'"commit": "{sha}"' in result.tasks[1].output
    assert result.run_page_url.startswith("http://127.0.0.1")
    assert state.run("dev", started.run_id).state == "SUCCESS"


def test_failing_task_yields_failed_with_its_output(world, repo):
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/fail")
    started = start(workspaces, state, settings, branch="feature/fail", sha=sha, trigger="d-2:0", params={"fail": "1"})
    result = finish(workspaces, state, started.run_id)
    assert result.result == "FAILED"
    failed = {t.key: t for t in result.tasks}["train"]
    assert failed.result == "FAILED" and "loss exploded at epoch 3" in failed.output


def test_same_trigger_never_starts_a_second_run(world, repo):
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/idem")
    kwargs = dict(repo="acme/tiny-ml", branch="feature/idem", sha=sha, workflow="train", trigger="d-3:0")
    first = branch_jobs.start_run(workspaces, state, settings, **kwargs)
    second = branch_jobs.start_run(workspaces, state, settings, **kwargs)
    assert first.run_id == second.run_id and second.superseded == []
    assert len(list(client.jobs.list_runs(job_id=first.job_id))) == 1


def test_a_newer_trigger_cancels_the_superseded_run(world, repo):
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/super")
    old = start(workspaces, state, settings, branch="feature/super", sha=sha, trigger="d-4:0", params={"sleep": "30"})
    new = start(workspaces, state, settings, branch="feature/super", sha=sha, trigger="d-5:0")
    assert new.superseded == [old.run_id]
    assert finished_run(client, old.run_id).state.result_state.value == "CANCELED"
    assert finished_run(client, new.run_id).state.result_state.value == "SUCCESS"


def test_refuse_policy_names_the_active_run(world, repo, tmp_path):
    settings, state, workspaces, client = world
    settings = settings.model_copy(
        update={
            "workflows": {
                **settings.workflows,
                "train": settings.workflows["train"].model_copy(update={"on_conflict": "refuse"}),
            }
        }
    )
    sha = branch(repo, "feature/refuse")
    old = start(workspaces, state, settings, branch="feature/refuse", sha=sha, trigger="d-6:0", params={"sleep": "30"})
    with pytest.raises(Permanent, match=f"already running for feature/refuse \\(run {old.run_id}\\)"):
        start(workspaces, state, settings, branch="feature/refuse", sha=sha, trigger="d-7:0")
    client.jobs.cancel_run(old.run_id)


def test_cleanup_cancels_runs_and_deletes_the_branch_jobs(world, repo):
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/gone")
    sync(workspaces, state, settings, "feature/gone", sha, "pull_request")  # makes feature/gone's test job
    sync(workspaces, state, settings, "main", sha, "pull_request")  # and main's
    running = start(
        workspaces, state, settings, branch="feature/gone", sha=sha, trigger="d-8:0", params={"sleep": "30"}
    )
    removed = branch_jobs.remove_branch(workspaces, state, settings, "acme/tiny-ml", "feature/gone")
    assert sorted(removed) == ["mlops-bot/acme/tiny-ml/feature/gone/test", "mlops-bot/acme/tiny-ml/feature/gone/train"]
    assert names(client) == ["mlops-bot/acme/tiny-ml/main/test"]
    assert finished_run(client, running.run_id).state.result_state.value == "CANCELED"
    assert branch_jobs.remove_branch(workspaces, state, settings, "acme/tiny-ml", "feature/gone") == []  # idempotent


def test_janitor_removes_jobs_of_gone_branches_and_reports_them(world, repo):
    settings, state, workspaces, client = world
    for b in ("main", "feature/old"):
        sync(workspaces, state, settings, b, "a" * 40, "pull_request")
    client.jobs.create(name="someone/else/job", tasks=[])  # not ours: never touched
    removed = janitor.clean_up(workspaces, state, settings, branch_exists=lambda repo, b: b == "main")
    assert [(r.job, r.why) for r in removed] == [
        ("mlops-bot/acme/tiny-ml/feature/old/test", "branch feature/old no longer exists")
    ]
    assert names(client) == ["mlops-bot/acme/tiny-ml/main/test", "someone/else/job"]


def test_repos_code_source_keeps_a_repo_per_branch(world, repo, sandbox, tmp_path):
    settings, state, workspaces, client = world
    settings, workspaces = bot_settings(tmp_path / "repos.toml", sandbox.url, repo, code_source="repos")
    sha = branch(repo, "feature/repo")
    started = start(workspaces, state, settings, branch="feature/repo", sha=sha, trigger="d-9:0")
    [r] = [
        r
        for r in client.repos.list(path_prefix="/Repos/mlops-bot/")
        if r.path.startswith("/Repos/mlops-bot/tiny-ml-feature-repo")
    ]
    assert r.branch == "feature/repo" and r.head_commit_id == sha
    assert finish(workspaces, state, started.run_id).result == "SUCCESS"
    branch_jobs.remove_branch(workspaces, state, settings, "acme/tiny-ml", "feature/repo")
    assert not [r for r in client.repos.list(path_prefix="/Repos/mlops-bot/") if "feature-repo" in r.path]


def test_injected_429_and_500_are_survived(tmp_path, repo, redis_client, monkeypatch):
    monkeypatch.setenv("SANDBOX_DATABRICKS_TOKEN", WORKSPACE_TOKEN)
    sandbox = start_workspace(tmp_path, faults=["POST:/api/2.2/jobs/create=429:2", "GET:/api/2.2/jobs/list=500:1"])
    try:
        settings, workspaces = bot_settings(tmp_path / "config.toml", sandbox.url, repo)
        state = State(redis_client)
        from workers.errors import is_transient

        with pytest.raises(Exception) as exc:  # plain 500: the SDK does not retry it ...
            branch_jobs.upsert_job(
                workspaces("dev"), state, settings, settings.repo("acme/tiny-ml"), "f", "train", "a" * 40
            )
        assert is_transient(exc.value)  # ... and the task's error policy retries it later
        made = branch_jobs.upsert_job(
            workspaces("dev"), state, settings, settings.repo("acme/tiny-ml"), "f", "train", "a" * 40
        )
        assert made.outcome == "created"  # the two 429s were retried by the SDK with Retry-After
        assert names(workspace_client(sandbox.url)) == ["mlops-bot/acme/tiny-ml/f/train"]
    finally:
        sandbox.stop()


def test_a_rejected_request_is_a_clear_permanent_error(tmp_path, repo, redis_client, monkeypatch):
    monkeypatch.setenv("SANDBOX_DATABRICKS_TOKEN", WORKSPACE_TOKEN)
    sandbox = start_workspace(tmp_path, faults=["POST:/api/2.2/jobs/run-now=400:1"])
    try:
        settings, workspaces = bot_settings(tmp_path / "config.toml", sandbox.url, repo)
        with pytest.raises(Permanent, match=r"Databricks \(dev\) refused to start job \d+"):
            start(workspaces, State(redis_client), settings, branch="f", sha="", trigger="d-400:0")
    finally:
        sandbox.stop()
