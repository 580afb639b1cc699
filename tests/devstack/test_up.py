"""`python -m devstack up --repo PATH`: the whole loop around someone's own repository, as they would run it.

A git repository with two branches goes in; the URLs `up` prints answer, the forge has both branches with their
commits, the commands it prints (git push, curl to open a PR and comment) reach the bot, and Ctrl-C stops every
process it started, leaving nothing behind."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from devstack.mlrepo import branch, git, make_repo
from devstack.processes import is_ready
from devstack.up import run_up
from devstack.waiting import wait_until
from tests.support.devstack_up import alive, descendants, devstack_up, gh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_repo(tmp_path_factory) -> Path:
    """Someone's model repository: `main` and a feature branch, one commit ahead."""
    repo = make_repo(tmp_path_factory.mktemp("own") / "fraud-detection")
    branch(repo, "feature/smote")
    return repo


@pytest.fixture(scope="module")
def up(own_repo):
    with devstack_up("--repo", str(own_repo)) as running:
        yield running


def test_the_printed_urls_answer(up):
    started = dict(re.findall(r"^  (redis|mlflow|slack|forge|workspace|web)\s+(\S+)$", up.output, re.M))
    assert set(started) == {"redis", "mlflow", "slack", "forge", "workspace", "web"}, up.output
    health = {"mlflow": "/health", "slack": "/sandbox/health", "forge": "/", "workspace": "/sandbox/health"}
    health["web"] = "/healthz"
    for name, path in health.items():
        assert is_ready(started[name] + path), f"{name} at {started[name]} does not answer"
    for label in ("repository", "dashboard", "MLflow UI"):
        url = up.value(rf"^  {label}\s+(http://\S+)")
        with requests.Session() as browser:  # the dashboard's ?token= sets a cookie and redirects
            assert browser.get(url, timeout=10).status_code == 200, f"the {label} URL {url} does not answer"
    assert up.value(r"^  repository\s+\S+\s+\(branches: (.*)\)$") == "feature/smote, main"


def test_every_branch_is_on_the_forge_with_its_history(up, own_repo):
    repo = gh(up).get_repo("acme/fraud-detection")
    assert repo.default_branch == "main"
    assert {b.name: b.commit.sha for b in repo.get_branches()} == {
        "main": git(own_repo, "rev-parse", "main"),
        "feature/smote": git(own_repo, "rev-parse", "feature/smote"),
    }
    assert [p.sha for p in repo.get_commit("feature/smote").parents] == [git(own_repo, "rev-parse", "main")]


def test_the_printed_commands_push_open_a_pr_and_reach_the_bot(up, own_repo):
    """What `up` says to type, typed: a new branch pushed, a PR opened, a comment (`/help`, quick) answered."""
    commands = [line.strip() for line in up.output.split("Try it", 1)[1].splitlines() if line.startswith("  ")]
    typed = [c.split("   #", 1)[0] for c in commands if c.startswith(("cd ", "git ", "curl "))]
    assert [c.split()[0] + " " + c.split()[1] for c in typed] == [
        "cd " + shlex.quote(str(own_repo)),
        "git remote",
        "git push",
        "curl -s",
        "curl -s",
    ]
    git(own_repo, "checkout", "-q", "-b", "feature/try-up", "main")
    (own_repo / "NOTES.md").write_text("trying the bot\n")
    git(own_repo, "add", "-A")
    git(own_repo, "commit", "-qm", "Try the bot")
    script = " && ".join(typed).replace("BRANCH", "feature/try-up").replace("/train toy", "/help")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    repo = gh(up).get_repo("acme/fraud-detection")
    [pr] = list(repo.get_pulls())
    assert (pr.number, pr.head.ref, pr.head.sha) == (1, "feature/try-up", git(own_repo, "rev-parse", "HEAD"))
    [asked] = [c for c in repo.get_issue(1).get_comments() if c.user.login == "alice"]
    answer = wait_until(
        lambda: [c for c in repo.get_issue(1).get_comments() if f"key={asked.id}-0" in c.body],
        90,
        "the bot's answer to /help",
        every=0.5,
    )
    assert "/train" in answer[0].body
    assert is_ready(up.value(r"the pull request's page: (http://\S+)"))


def test_ctrl_c_stops_every_process_and_leaves_nothing_behind(up):
    workdir = Path(up.value(r"everything runs under (\S+)$"))
    processes = descendants(up.process.pid)
    assert len(processes) >= 8, "fewer processes than Redis, MLflow, three stand-ins, web, worker and beat"
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(90) == 0
    up.read_until("stopping everything", 5)
    left = [pid for pid in processes if alive(pid)]
    assert not left, f"still running after Ctrl-C: {left}"
    assert not workdir.exists()


def test_a_repository_it_cannot_host_is_refused_before_anything_starts(tmp_path):
    said: list[str] = []
    repo = make_repo(tmp_path / "churn")
    assert run_up(repo, name="not-a-name", out=said.append) == 2
    assert said == [
        "cannot start: --name 'not-a-name': write it as owner/repo (letters, digits, '-', and '.' or '_' in the repository part)"
    ]
    (tmp_path / "config.toml").write_text("[[repos]]\nname = 'acme/churn'\n[bot]\nlogin = 3\n")
    assert run_up(repo, config=tmp_path / "config.toml", out=said.append) == 2
    assert said[1].startswith("cannot start: the config for acme/churn: 1 problem(s)\n  bot.login:"), said[1]
