"""The janitor's TTL rule (workers/jobs/janitor.py) on the shared fakes and the real State on a private Redis: a job
goes `[bot] job_ttl_days` after the bot last started a run of it (the bot's own record, written when the run
starts), or after its creation when it never ran — never while a run of it is going on."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from core import vocabulary as V
from core.workflows import Workflow
from tests.fakes import world
from workers.core.state import State
from workers.jobs import branch_jobs, janitor

REPO = "acme/churn-model"
DAY = 86400


@pytest.fixture
def w(settings, redis_client):
    return world(settings, State(redis_client), github=False)


def made(w, branch: str, days_ago: float, workflow: str = "train") -> int:
    """A managed job of `branch`, created `days_ago` days ago (Databricks' `created_time`), never run."""
    job_id = w.workspace.create_job(
        {"name": V.job_name("mlops-bot", REPO, branch, workflow), "tags": {"mlops-bot": "m"}}
    )
    w.workspace.created_time[job_id] = int((time.time() - days_ago * DAY) * 1000)
    return job_id


def clean_up(w, now: float | None = None) -> dict[str, str]:
    removed = janitor.clean_up(w.deps.workspaces, w.deps.state, w.deps.settings, lambda repo, b: None, now=now)
    return {r.job.removeprefix("mlops-bot/"): r.why for r in removed}


def ran(w, branch: str, trigger: str) -> int:
    """A `/train` on `branch`, as the command path starts it (branch_jobs.start_run), finished at once."""
    started = branch_jobs.start_run(
        w.deps.workspaces, w.deps.state, w.deps.settings, repo=REPO, branch=branch, sha="a" * 40, workflow="train",
        trigger=trigger, pr=7,
    )  # fmt: skip
    w.workspace.runs[started.run_id] = replace(w.workspace.runs[started.run_id], life_cycle="TERMINATED")
    return started.job_id


def test_a_job_that_never_ran_goes_ttl_days_after_it_was_made(w):
    days = w.deps.settings.bot.job_ttl_days
    made(w, "feature/old", days + 1)
    made(w, "feature/young", days - 1)
    assert clean_up(w) == {f"{REPO}/feature/old/train": f"never ran in the {days} days since it was made"}


def test_the_ttl_counts_from_the_bots_last_run_not_from_the_jobs_creation(w):
    days = w.deps.settings.bot.job_ttl_days
    job_id = ran(w, "feature/busy", "comment:1")
    w.workspace.created_time[job_id] = int((time.time() - (days + 10) * DAY) * 1000)  # made long ago, ran just now
    assert clean_up(w) == {}
    assert clean_up(w, now=time.time() + (days - 1) * DAY) == {}
    assert clean_up(w, now=time.time() + (days + 1) * DAY) == {f"{REPO}/feature/busy/train": f"no run for {days} days"}


def test_a_second_run_moves_the_ttl_on(w, monkeypatch):
    days = w.deps.settings.bot.job_ttl_days
    ran(w, "feature/busy", "comment:1")
    first = time.time()
    monkeypatch.setattr(time, "time", lambda: first + (days - 1) * DAY)  # the second /train, 29 days later
    ran(w, "feature/busy", "comment:2")
    monkeypatch.undo()
    assert clean_up(w, now=first + (days + 1) * DAY) == {}


def test_an_idle_job_is_kept_while_a_run_of_it_goes_on(w):
    """A run nobody recorded (the records lost with Redis, or started from the Databricks UI): not idle after all."""
    days = w.deps.settings.bot.job_ttl_days
    job_id = made(w, "feature/running", days + 5)
    run_id = w.workspace.run_now(job_id, {}, "from-the-ui")
    assert clean_up(w) == {} and job_id in w.workspace.jobs and w.workspace.cancelled == []
    w.workspace.cancel_run(run_id)
    assert clean_up(w) == {f"{REPO}/feature/running/train": f"never ran in the {days} days since it was made"}


def test_the_default_branchs_job_of_a_scheduled_workflow_is_never_idle(w):
    """Databricks starts its runs itself: the bot has no record of them."""
    settings = w.deps.settings
    daily = settings.workflows["test"].model_dump() | {"schedule": {"quartz_cron": "0 0 3 * * ?"}}
    w.deps = replace(w.deps, settings=settings.model_copy(
        update={"workflows": {**settings.workflows, "test": Workflow.model_validate(daily)}}
    ))  # fmt: skip
    made(w, "main", 400, workflow="test")
    made(w, "main", 400, workflow="train")
    assert clean_up(w) == {f"{REPO}/main/train": f"never ran in the {settings.bot.job_ttl_days} days since it was made"}


def test_a_ttl_of_0_keeps_every_job(w):
    w.deps = replace(w.deps, settings=w.deps.settings.model_copy(
        update={"bot": w.deps.settings.bot.model_copy(update={"job_ttl_days": 0})}
    ))  # fmt: skip
    made(w, "feature/ancient", 4000)
    assert clean_up(w) == {}


def test_a_job_without_a_creation_date_or_a_run_is_no_sure_answer(w):
    job_id = made(w, "feature/undated", 0)
    w.workspace.created_time[job_id] = 0
    assert clean_up(w, now=time.time() + 1000 * DAY) == {}


def test_the_last_run_of_a_job_gone_is_forgotten_and_a_removed_jobs_too(w):
    days = w.deps.settings.bot.job_ttl_days
    gone = w.workspace.jobs.pop(ran(w, "feature/deleted-in-the-ui", "comment:1"))["name"]
    ran(w, "feature/busy", "comment:2")
    busy = V.job_name("mlops-bot", REPO, "feature/busy", "train")
    assert set(w.deps.state.job_last_runs("dev")) == {gone, busy}
    clean_up(w)
    assert set(w.deps.state.job_last_runs("dev")) == {busy}
    clean_up(w, now=time.time() + (days + 1) * DAY)
    assert w.deps.state.job_last_runs("dev") == {}
