"""Four eyes over authorship (issue #18): the approver of a version is none of the people behind its pull request — its
opener, its commits' authors and committers, their `Co-authored-by:` co-authors — as the bot listed them from GitHub at
merge; a bot never approves, and a pull request only bots wrote is its merger's. Before: only the opener was compared.

The attack: carol (read) opened a PR from alice's branch, bob merged it, alice approved her own code into prod.

On the shared fakes through the approval service (workers/release/approvals.py `decide`), the release train driven as
tests/unit/test_release.py drives it; and the listing itself on the sandbox forge through the bot's gateway (PyGithub),
paged beyond one page and held to GitHub's published schema.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests
from github import Auth, Github

from core.config import GitHubSettings
from devstack.sandboxes import start_forge
from sandbox.forge.contract import rest_contract
from tests.fakes import commit, pull, world
from tests.support.forge_seeds import users
from tests.unit.test_release import PR, PROD, REPO, SCORED, STAGING, finish, register, validation_run
from workers.core.state import State
from workers.gateways import PullCommit
from workers.release import approvals, authorship, policy
from workers.release import train as release


@pytest.fixture
def w(settings, redis_client):
    """config.toml's churn-model: prod's listed approver is bob; [databricks.users] gives alice@acme.com and
    bob@acme.com. Prod v1 is the champion."""
    w = world(settings, State(redis_client))
    w.forge.roles.update(alice="admin", bob="admin", carol="read", mo="maintain", erin="write")
    w.forge.roles.update({"dependabot[bot]": "write", "mlops-bot": "write"})
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def released(w, *, opener: str, merged_by: str, commits: list[PullCommit]):
    """`opener`'s PR #7 with `commits` is merged by `merged_by`: staging training registers v2, validation passes."""
    w.forge.pulls[PR] = pull(PR, author=opener, state="closed")
    w.forge.commits[PR] = commits
    [train] = release.on_merged(
        w.deps, repo=REPO, pr=PR, sha="m" * 40, author=opener, merged_by=merged_by, delivery_id="d-merge"
    )
    register(w, STAGING, "2", train)
    finish(w, "staging", train)
    finish(w, "staging", validation_run(w), output=SCORED)
    return w.deps.state.approval(STAGING, "2")


def approve(w, login: str):
    return approvals.decide(w.deps, "approve", STAGING, "2", login, "github")


def champion(w) -> str:
    return w.registry.aliases[(PROD, "champion")]


# --- the attack ---------------------------------------------------------------------------------------------
def test_carol_opens_alices_branch_bob_merges_and_alice_cannot_approve_her_own_code(w):
    request = released(w, opener="carol", merged_by="bob", commits=[commit("alice"), commit("alice")])
    assert request.proven and request.pr_author == "carol" and request.needed == 1
    [asked] = w.slack.requests  # the request says who cannot approve it
    assert "@carol, @alice wrote the change and cannot approve it." in asked["text"]
    verdict = approve(w, "alice")
    assert not verdict.ok
    assert verdict.message == (
        "refused: four eyes: @alice wrote commits of the pull request, so cannot approve churn-model-staging@2."
    )
    assert champion(w) == "1"
    assert approve(w, "mo").ok and champion(w) != "1"  # somebody who wrote none of it


def test_the_commits_are_recorded_at_merge_in_the_bots_own_records(w):
    request = released(w, opener="carol", merged_by="bob", commits=[commit("alice", committer="erin")])
    kept = w.deps.state.release("churn-model", REPO, PR).authorship
    assert kept == request.authorship and kept.commits == 1
    assert [(a.role, a.login) for a in kept.authors] == [
        ("opened", "carol"),
        ("authored", "alice"),
        ("committed", "erin"),
    ]
    w.forge.commits[PR] = [commit("mo")]  # GitHub's answer later (a force-push after the merge) changes nothing
    assert "@erin committed to the pull request" in approve(w, "erin").message


# --- Co-authored-by trailers ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "trailer",
    [
        "Co-authored-by: Bob B. <583231+bob@users.noreply.github.com>",  # GitHub's no-reply address, ID+login
        "Co-authored-by: Bob B. <bob@users.noreply.github.com>",  # its older form
        "co-authored-by: Bob B. <BOB@acme.com>",  # the email config.toml knows for bob ([databricks.users])
        "Co-authored-by: bob <bob@laptop.local>",  # his login as the name
    ],
)
def test_bobs_own_commit_through_a_co_authored_by_trailer_is_refused(w, trailer):
    message = f"Tune the threshold\n\nThe old one overfit.\n\nSigned-off-by: Alice <alice@acme.com>\n{trailer}\n"
    released(w, opener="alice", merged_by="mo", commits=[commit("alice", message=message)])
    verdict = approve(w, "bob")
    assert not verdict.ok and "four eyes: @bob is named co-author (`Co-authored-by:`) of commits" in verdict.message
    assert champion(w) == "1"


def test_a_trailer_outside_the_trailer_block_names_nobody(w):
    message = "Co-authored-by: Bob B. <bob@acme.com>\n\nwas how bob's pairing used to be written; not any more"
    released(w, opener="alice", merged_by="mo", commits=[commit("alice", message=message)])
    assert approve(w, "bob").ok


# --- bots -----------------------------------------------------------------------------------------------------
def test_a_pull_request_a_bot_opened_still_checks_its_authors(w):
    request = released(w, opener="renovate[bot]", merged_by="mo", commits=[commit("alice")])
    assert request.pr_author == "renovate[bot]"
    verdict = approve(w, "alice")
    assert not verdict.ok and "four eyes: @alice wrote commits of the pull request" in verdict.message


def test_a_pull_request_only_bots_wrote_is_its_mergers_and_another_person_approves(w):
    # dependabot opened it and wrote it; GitHub itself (web-flow) committed the web-made change
    bots = [commit("dependabot[bot]"), commit("dependabot[bot]", committer="web-flow")]
    released(w, opener="dependabot[bot]", merged_by="bob", commits=bots)
    verdict = approve(w, "bob")
    assert not verdict.ok
    assert verdict.message == (
        "refused: four eyes: @bob merged the pull request, which only bots wrote, so cannot approve "
        "churn-model-staging@2."
    )
    assert approve(w, "mo").ok


def test_the_human_a_bot_names_as_co_author_is_its_author(w):
    asked = commit(
        "copilot-swe-agent[bot]", message="Fix the split\n\nCo-authored-by: bob <1+bob@users.noreply.github.com>"
    )
    released(w, opener="Copilot[bot]", merged_by="mo", commits=[asked])
    assert "is named co-author" in approve(w, "bob").message
    assert approve(w, "erin").ok  # a human is behind it: the merger is not its author


@pytest.mark.parametrize("bot", ["dependabot[bot]", "mlops-bot", "MLOps-Bot[bot]"])
def test_a_bot_never_approves(w, bot):
    released(w, opener="alice", merged_by="mo", commits=[commit("alice")])
    verdict = approve(w, bot)
    assert not verdict.ok and "is a bot account, and a bot never approves" in verdict.message
    assert champion(w) == "1"


# --- git identities GitHub links to no account ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "email", ["alice@acme.com", "7+alice@users.noreply.github.com", "alice@users.noreply.ghe.acme.com"]
)
def test_an_unlinked_author_is_matched_by_email_to_the_approver(w, email):
    unlinked = commit("", email=email, name="A. Liddell")  # an email on no GitHub account
    request = released(w, opener="carol", merged_by="bob", commits=[unlinked])
    assert request.needed == 1  # the bot knows who that is
    verdict = approve(w, "alice")
    assert not verdict.ok and "four eyes: @alice wrote commits of the pull request" in verdict.message


def test_an_author_the_bot_cannot_name_needs_two_listed_approvers(w):
    # alice wrote it under an email on no account and no config: it could be anyone, alice included
    unlinked = commit("", email="ghost@elsewhere.example", name="Ghost")
    request = released(w, opener="carol", merged_by="erin", commits=[commit("carol"), unlinked])
    assert request.needed == 2
    verdict = approve(w, "alice")
    assert not verdict.ok
    assert "the bot cannot tell who wrote churn-model-staging@2: commits of its pull request were made by Ghost " in (
        verdict.message
    )
    assert "which GitHub links to no account; only the model's listed approvers (bob) may approve it" in verdict.message
    assert approve(w, "bob").ok and champion(w) == "1"  # 1 of 2
    assert w.deps.state.approval(STAGING, "2").approvals[0].by == "bob"


def test_more_commits_than_github_lists_count_as_unknown(w):
    request = released(w, opener="carol", merged_by="erin", commits=[commit("carol") for _ in range(251)])
    assert request.authorship.commits == 250 and request.needed == 2
    assert "GitHub lists 250 commits of a pull request at most" in approve(w, "alice").message


def test_a_request_recorded_before_the_listing_needs_listed_approvers(w, settings):
    request = released(w, opener="carol", merged_by="erin", commits=[commit("carol")])
    older = request.__class__.from_json({k: v for k, v in request.to_json().items() if k != "authorship"})
    why = policy.approval_refusal(older, "alice", "admin", settings, STAGING, "2")
    assert "the bot did not list who wrote its pull request when it was merged" in why


# --- the listing on the sandbox forge, through the bot's gateway -------------------------------------------------
SEED = (
    '[users.alice]\ntoken = "ghp_alice"\nemail = "alice@acme.test"\n'  # her commits link to her by this email
    + users({"bob": "ghp_bob", "carol": "ghp_carol"})
    + '[users."mlops-bot"]\ntoken = "ghp_bot"\ntype = "Bot"\n'
    + '[[repos]]\nfull_name = "acme/churn-model"\n'
    + 'permissions = { alice = "write", bob = "admin", carol = "read", "mlops-bot" = "write" }\n'
)


def git(clone: Path, *args: str, who: tuple[str, str] = ("Alice", "alice@acme.test")) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": who[0], "GIT_AUTHOR_EMAIL": who[1],
           "GIT_COMMITTER_NAME": who[0], "GIT_COMMITTER_EMAIL": who[1]}  # fmt: skip
    return subprocess.run(["git", *args], cwd=clone, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forge")
    (tmp / "seed.toml").write_text(SEED)
    service = start_forge(tmp, tmp / "seed.toml")
    try:
        yield service.url, tmp
    finally:
        service.stop()


def test_the_forge_lists_a_pull_requests_commits_page_by_page_as_github_does(forge, monkeypatch, settings):
    """pulls/list-commits, paged (`per_page` at most 100, a `Link` header to the next page), each commit's `author`
    and `committer` the account GitHub linked by email, or null — "GitHub uses the email address in the commit header
    to link the commit to a GitHub user" (docs.github.com, "Why are my commits linked to the wrong user?")."""
    from workers.gateways.forge import Forge  # the bot's own gateway

    url, tmp = forge
    clone = tmp / "clone"
    git(tmp, "clone", "-q", f"{url}/{REPO}.git", str(clone))
    git(clone, "checkout", "-q", "-b", "alice/tune")
    bob_id = requests.get(f"{url}/users/bob", headers={"Authorization": "token ghp_bot"}).json()["id"]
    for n in range(103):
        git(clone, "commit", "-q", "--allow-empty", "-m", f"step {n}")
    pairing = f"pair\n\nCo-authored-by: Bob <{bob_id}+bob@users.noreply.sandbox.local>"  # bob's no-reply address
    git(clone, "commit", "-q", "--allow-empty", "-m", pairing)
    git(clone, "commit", "-q", "--allow-empty", "-m", "typed as alice", who=("alice", "ghost@elsewhere.example"))
    git(clone, "push", "-q", url.replace("http://", "http://alice:ghp_alice@") + f"/{REPO}.git", "alice/tune")
    carol = Github(base_url=url, auth=Auth.Token("ghp_carol"), seconds_between_requests=0, seconds_between_writes=0)
    # carol (read) opens a pull request from alice's branch
    pr = carol.get_repo(REPO).create_pull(title="Tune", body="", head="alice/tune", base="main")

    monkeypatch.setenv("FOUR_EYES_GITHUB_TOKEN", "ghp_bot")
    gateway = Forge(GitHubSettings(base_url=url, token_env="FOUR_EYES_GITHUB_TOKEN", seconds_between_writes=0))
    listed = gateway.pull_commits(REPO, pr.number)

    assert len(listed) == 105 and listed[0].message.startswith("step 0")  # oldest first, every page
    assert [c.sha for c in listed] == [c.sha for c in pr.get_commits()]  # as PyGithub's own paging reads them
    assert listed[0].author.login == "alice" and listed[0].author.kind == "User"
    assert (listed[-1].author.login, listed[-1].author.name) == ("", "alice")  # a name links nobody
    pages = [
        x for x in requests.get(f"{url}/sandbox/exchanges").json()
        if x["path"] == f"/repos/{REPO}/pulls/{pr.number}/commits" and x["user"] == "mlops-bot"
    ]  # fmt: skip
    assert [x["query"] for x in pages] == ["per_page=100", "page=2&per_page=100"]  # the second: the Link's next
    problems = [
        str(p) for x in pages for p in rest_contract().response_problems("GET", x["path"], x["status"], x["response"])
    ]
    assert problems == []

    # what the merge writes down from it, and what four eyes then says of it
    record = authorship.authorship_of(pr.user.login, listed)
    assert record.commits == 105
    assert authorship.roles_of(record, "alice", settings) == [
        "wrote commits of the pull request",
        "committed to the pull request",
    ]
    assert authorship.roles_of(record, "bob", settings) == [authorship.ROLES["co-authored"]]
    assert authorship.roles_of(record, "carol", settings) == ["opened the pull request"]
    unknown = authorship.unknown(record, settings).replace("\u200b", "")  # (a zero-width space after each @)
    assert "alice (ghost@elsewhere.example), which GitHub links to no account" in unknown
