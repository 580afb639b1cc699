"""Push branch filters: `run_on = [{ event = "push", branches = [...] }]` starts a workflow only on the branches
its globs name (`*` stops at `/`, `**` does not, as in GitHub Actions); plain `"push"` still means every branch."""

from __future__ import annotations

import copy
import json
import tomllib

import pytest

from core import vocabulary as V
from core.config import ConfigError, Settings, parse_config
from core.events import Event
from core.routing import Ignored
from core.triggers import branch_matches
from handlers import router
from tests.conftest import ROOT, fixtures_dir, payload

REAL_PUSH = "push__branch-update.reallyfastci.payload.json"  # a real delivery: a push to master


def real_push(branch: str) -> dict:
    data = json.loads((fixtures_dir() / "github" / REAL_PUSH).read_text())
    return {**data, "ref": f"refs/heads/{branch}"}


def settings_with(run_on: list, *, only: bool = True, repo: str = "ailisp/gcbapp-buildconfig-example") -> Settings:
    """config.toml with a `smoke` workflow (the `test` workflow's tasks) on `run_on`; `only`: the repo runs just it."""
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["workflows"]["smoke"] = {**copy.deepcopy(data["workflows"]["test"]), "run_on": run_on}
    data["repos"][0].update(name=repo, default_branch="master" if only else "main")
    data["repos"][0]["workflows"] = ["smoke"] if only else [*data["repos"][0]["workflows"], "smoke"]
    data["models"] = {}
    return parse_config(data)


def push(settings: Settings, data: dict):
    return router.dispatch(Event("github", "push", "", "d-1", data), settings)


def started(outcome) -> list[str]:
    assert not isinstance(outcome, Ignored), outcome
    return [a.kwargs["workflow"] for a in outcome if a.task == V.START_RUN]


@pytest.mark.parametrize(
    "branch, globs, runs",
    [
        ("master", ["master"], True),
        ("release/1.2", ["master", "release/*"], True),
        ("release/1.2/hotfix", ["release/*"], False),  # `*` does not match `/`
        ("release/1.2/hotfix", ["release/**"], True),  # `**` does
        ("feature/x", ["master", "release/*"], False),
        ("masterful", ["master"], False),  # a glob matches the whole name
        ("v1.x", ["v1.?"], True),
        ("anything/at/all", [], True),  # no filter: every branch
    ],
)
def test_the_glob_table(branch, globs, runs):
    assert branch_matches(branch, globs) is runs


@pytest.mark.parametrize(
    "branch, run_on, expected",
    [
        ("master", ["push"], ["smoke"]),  # the old form: every branch
        ("feature/x", ["push"], ["smoke"]),
        ("master", [{"event": "push", "branches": ["master", "release/*"]}], ["smoke"]),
        ("release/7", [{"event": "push", "branches": ["master", "release/*"]}], ["smoke"]),
        ("release/7", [{"event": "push"}], ["smoke"]),  # a table without branches: every branch
    ],
)
def test_a_real_push_starts_the_workflows_that_want_its_branch(branch, run_on, expected):
    assert started(push(settings_with(run_on), real_push(branch))) == expected


def test_a_push_no_workflow_wants_is_ignored_naming_the_filter():
    settings = settings_with([{"event": "push", "branches": ["master", "release/*"]}])
    assert push(settings, real_push("feature/x")) == Ignored(
        "push to feature/x: no workflow runs on this branch (run_on push branches: smoke on master, release/*)"
    )


def test_a_filtered_workflow_does_not_start_but_the_branch_jobs_still_sync_for_commands():
    """acme/churn-model's other workflows run on /train and on PRs: the branch keeps its jobs."""
    settings = settings_with([{"event": "push", "branches": ["main"]}], only=False, repo="acme/churn-model")
    outcome = push(settings, payload("push_new_branch"))  # feature/better-features
    assert [a.task for a in outcome] == [V.SYNC_BRANCH_JOBS]
    main = {**payload("push_new_branch"), "ref": "refs/heads/main"}
    assert started(push(settings, main)) == ["smoke"]


def test_the_default_branch_is_wanted_by_a_scheduled_workflow():
    settings = settings_with([{"event": "push", "branches": ["release/*"]}])
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["workflows"]["smoke"] = {
        **copy.deepcopy(data["workflows"]["test"]),
        "run_on": [],
        "schedule": {"quartz_cron": "0 0 3 * * ?"},
    }
    data["repos"][0].update(name="ailisp/gcbapp-buildconfig-example", default_branch="master", workflows=["smoke"])
    scheduled = parse_config(data)
    assert [a.task for a in push(scheduled, real_push("master"))] == [V.SYNC_BRANCH_JOBS]
    assert isinstance(push(scheduled, real_push("feature/x")), Ignored)
    assert isinstance(push(settings, real_push("master")), Ignored)


@pytest.mark.parametrize(
    "run_on, message",
    [
        ([{"event": "pull_request", "branches": ["main"]}], "run_on[0].branches: only a push has branches to filter"),
        ([{"event": "push", "branches": "main"}], "run_on[0].branches: a list of branch globs"),
        ([{"event": "push", "branch": ["main"]}], "run_on[0]: unknown key(s) ['branch']"),
        (["push", {"event": "push", "branches": ["main"]}], "run_on[1]: 'push' is listed twice"),
        ([{"event": "puhs"}], "workflows.smoke.run_on[0]: Input should be 'push'"),
    ],
)
def test_a_bad_filter_is_named(run_on, message):
    with pytest.raises(ConfigError) as exc:
        settings_with(run_on)
    assert message in str(exc.value)
