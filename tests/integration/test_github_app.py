"""Authenticating as a GitHub App: installation tokens, check runs instead of statuses."""

import textwrap

import pytest
from github import Auth, Github

from core.config import GitHubSettings
from devstack.sandboxes import start_forge
from tests.support.app_keys import APP_SEED, app_key_pair
from workers.gateways.forge import Forge


@pytest.fixture(scope="module")
def app_forge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    pem = app_key_pair(tmp)
    (tmp / "seed.toml").write_text(
        textwrap.dedent("""\
        [users.alice]
        token = "ghp_alice"
        [[repos]]
        full_name = "acme/churn-model"
        permissions = { alice = "write" }
        """)
        + APP_SEED
    )
    forge = start_forge(tmp, tmp / "seed.toml")
    yield forge, pem
    forge.stop()


def test_app_auth_uses_check_runs_and_comments_as_the_app(app_forge, monkeypatch):
    forge, pem = app_forge
    monkeypatch.setenv("TEST_APP_KEY", pem)
    cfg = GitHubSettings(
        base_url=forge.url,
        app_id=123,
        installation_id=456,
        app_private_key_env="TEST_APP_KEY",
        seconds_between_writes=0,
    )
    bot = Forge(cfg)
    alice = Github(
        base_url=forge.url, auth=Auth.Token("ghp_alice"), seconds_between_requests=0, seconds_between_writes=0
    ).get_repo("acme/churn-model")
    sha = alice.get_branch("main").commit.sha
    pr = alice.create_issue(title="an issue to comment on")

    bot.set_status("acme/churn-model", sha, "mlops-bot/train", "pending", "train is running", "http://x/run/1")
    bot.set_status("acme/churn-model", sha, "mlops-bot/train", "success", "train SUCCESS in 3 s", "http://x/run/1")
    runs = list(alice.get_commit(sha).get_check_runs())
    assert [(r.name, r.status, r.conclusion) for r in runs] == [("mlops-bot/train", "completed", "success")]

    cid = bot.upsert_comment("acme/churn-model", pr.number, "report", "train", "hello")
    again = bot.upsert_comment("acme/churn-model", pr.number, "report", "train", "hello again")
    [comment] = list(pr.get_comments())
    assert (
        cid == again == comment.id and comment.user.login == "mlops-bot[bot]" and comment.body.endswith("hello again")
    )
