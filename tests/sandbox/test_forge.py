"""End-to-end tests of the sandbox forge: real subprocess, real git, PyGithub, a real webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from github import Auth, Github, GithubException

from tests.support import stand_ins
from tests.support.app_keys import APP_SEED, new_key, private_pem, public_pem
from tests.support.receivers import Receiver

SECRET = "test-secret"
APP_ID = 123
INSTALLATION_ID = 456
ZERO = "0" * 40


# ---------------------------------------------------------------- webhook receiver
def delivery(path: str, headers: dict, raw: bytes) -> dict:
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {
        "event": headers.get("X-GitHub-Event"),
        "guid": headers.get("X-GitHub-Delivery"),
        "headers": headers,
        "sig_ok": hmac.compare_digest(headers.get("X-Hub-Signature-256", ""), expected),
        "payload": json.loads(raw),
    }


def seen(d: dict) -> tuple:
    return d["event"], d["payload"].get("action"), d["payload"].get("ref")


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def app_keys():
    key = new_key()
    return private_pem(key), public_pem(key)


@pytest.fixture(scope="module")
def receiver():
    r = Receiver("/webhooks/github", record=delivery, seen=seen)
    r.answer = (200, "ok", "text/plain")
    yield r
    r.close()


@pytest.fixture(scope="module")
def forge(tmp_path_factory, receiver, app_keys):
    tmp = tmp_path_factory.mktemp("forge")
    src = tmp / "seed-src"
    src.mkdir()
    (src / "train.py").write_text("print('training')\n")
    (src / "README.md").write_text("# churn model\n")
    (tmp / "app.pub.pem").write_bytes(app_keys[1])
    (tmp / "seed.toml").write_text(f"""
[users.alice]
token = "ghp_alice"
name = "Alice A."
email = "alice@example.com"
[users.bob]
token = "ghp_bob"
[users.carol]
token = "ghp_carol"
[users."mlops-bot"]
token = "ghp_bot"
type = "Bot"

[[repos]]
full_name = "acme/churn-model"
default_branch = "main"
init_from = "seed-src"
permissions = {{ alice = "write", bob = "admin", carol = "read", "mlops-bot" = "write" }}
[repos.webhook]
url = "{receiver.url}"
secret_env = "FORGE_TEST_SECRET"

{APP_SEED}""")
    env = {**os.environ, "FORGE_TEST_SECRET": SECRET}
    proc, base = stand_ins.start("forge", ["--data", str(tmp / "data"), "--seed", str(tmp / "seed.toml")], env, 30)
    yield {"base": base, "tmp": tmp}
    stand_ins.stop(proc)


# PyGithub throttles to 4 req/s (1 write/s) by default; the sandbox does not need that
FAST = {"retry": None, "seconds_between_requests": 0, "seconds_between_writes": 0}


def gh(forge, token: str) -> Github:
    return Github(base_url=forge["base"], auth=Auth.Token(token), **FAST)


def git(*args, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Alice A.",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "Alice A.",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
        **(env or {}),
    }
    p = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"git {args} failed: {p.stderr}")
    return p


def push_url(forge, login: str, token: str, full_name: str = "acme/churn-model") -> str:
    return forge["base"].replace("http://", f"http://{login}:{token}@") + f"/{full_name}.git"


@pytest.fixture(scope="module")
def clone(forge, tmp_path_factory):
    wc = tmp_path_factory.mktemp("wc") / "churn"
    git("clone", "-q", f"{forge['base']}/acme/churn-model.git", str(wc))
    return wc


def commit_file(wc: Path, name: str, text: str, message: str) -> str:
    (wc / name).write_text(text)
    git("add", name, cwd=wc)
    git("commit", "-q", "-m", message, cwd=wc)
    return git("rev-parse", "HEAD", cwd=wc).stdout.strip()


# ---------------------------------------------------------------- tests
def test_bad_token_is_401(forge):
    r = requests.get(f"{forge['base']}/user", headers={"Authorization": "token nope"})
    assert r.status_code == 401
    assert r.json()["message"] == "Bad credentials"
    assert "documentation_url" in r.json()
    with pytest.raises(GithubException) as exc:
        gh(forge, "nope").get_user().login  # noqa: B018 (the attribute access makes PyGithub call the API)
    assert exc.value.status == 401
    me = gh(forge, "ghp_alice").get_user()
    assert me.login == "alice" and me.name == "Alice A."
    r = requests.get(f"{forge['base']}/user", headers={"Authorization": "Bearer ghp_bob"})
    assert r.json()["login"] == "bob"
    for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-GitHub-Request-Id"):
        assert h in r.headers


def test_push_branch_over_http_fires_signed_push(forge, receiver, clone):
    git("checkout", "-q", "-b", "feature-a", cwd=clone)
    sha = commit_file(clone, "feature.py", "x = 1\n", "Add feature")
    git("push", "-q", push_url(forge, "alice", "ghp_alice"), "feature-a", cwd=clone)
    d = receiver.wait(lambda d: d["event"] == "push" and d["payload"]["ref"] == "refs/heads/feature-a")
    p = d["payload"]
    assert d["sig_ok"], "X-Hub-Signature-256 must be HMAC-SHA256 of the raw body"
    assert d["headers"]["X-Hub-Signature"].startswith("sha1=")
    assert d["headers"]["User-Agent"].startswith("GitHub-Hookshot/")
    assert d["headers"]["X-GitHub-Hook-ID"]
    assert p["created"] is True and p["deleted"] is False
    assert p["before"] == ZERO and p["after"] == sha
    assert [c["id"] for c in p["commits"]] == [sha]
    assert p["commits"][0]["added"] == ["feature.py"]
    assert p["head_commit"]["id"] == sha
    assert p["pusher"]["name"] == "alice" and p["sender"]["login"] == "alice"
    assert p["repository"]["full_name"] == "acme/churn-model"
    assert p["repository"]["clone_url"] == f"{forge['base']}/acme/churn-model.git"
    assert p["installation"]["id"] == INSTALLATION_ID

    # carol only has read: push refused, no webhook
    git("checkout", "-q", "-b", "carol-branch", cwd=clone)
    commit_file(clone, "carol.txt", "hi\n", "carol change")
    res = git("push", "-q", push_url(forge, "carol", "ghp_carol"), "carol-branch", cwd=clone, check=False)
    assert res.returncode != 0 and "403" in res.stderr
    res = git("push", "-q", push_url(forge, "x", "wrong-token"), "carol-branch", cwd=clone, check=False)
    assert res.returncode != 0
    time.sleep(0.3)
    assert not receiver.find(lambda d: d["event"] == "push" and d["payload"]["ref"] == "refs/heads/carol-branch")
    git("checkout", "-q", "feature-a", cwd=clone)


def test_push_to_bare_path_fires(forge, receiver, clone):
    info = requests.get(f"{forge['base']}/sandbox/repos/acme/churn-model").json()
    assert info["git_url"] == f"{forge['base']}/acme/churn-model.git"
    git("checkout", "-q", "-b", "bare-push", "main", cwd=clone)
    sha = commit_file(clone, "bare.txt", "bare\n", "via path")
    git("push", "-q", info["path"], "bare-push", cwd=clone, env={"GIT_PUSHER": "bob"})
    d = receiver.wait(lambda d: d["event"] == "push" and d["payload"]["ref"] == "refs/heads/bare-push")
    assert d["payload"]["after"] == sha and d["payload"]["created"] is True
    assert d["payload"]["pusher"]["name"] == "bob"
    git("checkout", "-q", "feature-a", cwd=clone)


def test_pull_request_lifecycle(forge, receiver, clone):
    alice, carol, bot = gh(forge, "ghp_alice"), gh(forge, "ghp_carol"), gh(forge, "ghp_bot")
    repo = alice.get_repo("acme/churn-model")
    head_sha = git("rev-parse", "feature-a", cwd=clone).stdout.strip()
    pr = repo.create_pull(base="main", head="feature-a", title="Add feature", body="please review")
    assert pr.number >= 1 and pr.state == "open" and pr.head.sha == head_sha and pr.head.ref == "feature-a"
    assert pr.html_url == f"{forge['base']}/acme/churn-model/pull/{pr.number}"
    d = receiver.wait(
        lambda d: (
            d["event"] == "pull_request" and d["payload"]["action"] == "opened" and d["payload"]["number"] == pr.number
        )
    )
    assert d["payload"]["pull_request"]["head"]["sha"] == head_sha and d["sig_ok"]
    issue = repo.get_issue(pr.number)
    assert issue.pull_request is not None
    assert [(f.filename, f.status) for f in pr.get_files()] == [("feature.py", "added")]
    assert [c.sha for c in pr.get_commits()] == [head_sha]
    assert repo.get_contents("feature.py", ref="feature-a").decoded_content == b"x = 1\n"
    assert sorted(c.path for c in repo.get_contents("")) == ["README.md", "train.py"]
    with pytest.raises(GithubException) as exc:
        repo.create_pull(base="main", head="feature-a", title="dup")
    assert exc.value.status == 422

    # push to head -> synchronize
    new_sha = commit_file(clone, "feature.py", "x = 2\n", "Tweak feature")
    git("push", "-q", push_url(forge, "alice", "ghp_alice"), "feature-a", cwd=clone)
    d = receiver.wait(
        lambda d: (
            d["event"] == "pull_request"
            and d["payload"]["action"] == "synchronize"
            and d["payload"]["number"] == pr.number
        )
    )
    assert d["payload"]["before"] == head_sha and d["payload"]["after"] == new_sha
    assert d["payload"]["pull_request"]["head"]["sha"] == new_sha
    assert repo.get_pull(pr.number).head.sha == new_sha

    # comments (carol has read: enough to comment)
    c_pr = carol.get_repo("acme/churn-model").get_pull(pr.number)
    comment = c_pr.create_issue_comment("/deploy staging")
    d = receiver.wait(
        lambda d: (
            d["event"] == "issue_comment"
            and d["payload"]["action"] == "created"
            and d["payload"]["comment"]["id"] == comment.id
        )
    )
    assert "pull_request" in d["payload"]["issue"] and "head" not in d["payload"]["issue"]
    assert d["payload"]["issue"]["pull_request"]["url"].endswith(f"/pulls/{pr.number}")
    assert d["payload"]["comment"]["author_association"] == "COLLABORATOR"
    assert d["payload"]["sender"]["login"] == "carol"
    comment.edit("/deploy prod")
    d = receiver.wait(
        lambda d: (
            d["event"] == "issue_comment"
            and d["payload"]["action"] == "edited"
            and d["payload"]["comment"]["id"] == comment.id
        )
    )
    assert d["payload"]["changes"]["body"]["from"] == "/deploy staging"
    assert d["payload"]["comment"]["body"] == "/deploy prod"
    with pytest.raises(GithubException) as exc:
        repo.get_issue(pr.number).get_comment(comment.id).edit("hijack")
    assert exc.value.status == 403

    # reactions: same user + content twice -> same reaction, 201 then 200
    bot_comment = bot.get_repo("acme/churn-model").get_issue(pr.number).get_comment(comment.id)
    r1 = bot_comment.create_reaction("eyes")
    r2 = bot_comment.create_reaction("eyes")
    assert r1.id == r2.id
    raw = requests.post(
        f"{bot_comment.url}/reactions", json={"content": "eyes"}, headers={"Authorization": "token ghp_bot"}
    )
    assert raw.status_code == 200 and raw.json()["id"] == r1.id
    raw = requests.post(
        f"{bot_comment.url}/reactions", json={"content": "rocket"}, headers={"Authorization": "token ghp_bot"}
    )
    assert raw.status_code == 201
    assert sorted(r.content for r in bot_comment.get_reactions()) == ["eyes", "rocket"]
    assert repo.get_issue(pr.number).get_comment(comment.id).raw_data["reactions"]["eyes"] == 1
    assert bot_comment.delete_reaction(r1.id) is True
    assert [r.content for r in bot_comment.get_reactions()] == ["rocket"]

    # delete comment
    second = c_pr.create_issue_comment("to be deleted")
    second.delete()
    d = receiver.wait(
        lambda d: (
            d["event"] == "issue_comment"
            and d["payload"]["action"] == "deleted"
            and d["payload"]["comment"]["id"] == second.id
        )
    )
    assert d["payload"]["comment"]["body"] == "to be deleted"
    assert [c.id for c in repo.get_pull(pr.number).get_issue_comments()] == [comment.id]

    # statuses + combined status
    commit = bot.get_repo("acme/churn-model").get_commit(new_sha)
    commit.create_status("pending", target_url=f"{forge['base']}/ci/1", description="training", context="ci/train")
    commit.create_status("success", description="tests ok", context="ci/test")
    combined = repo.get_commit(new_sha).get_combined_status()
    assert combined.state == "pending" and combined.total_count == 2
    commit.create_status("success", description="trained", context="ci/train")
    combined = repo.get_commit("feature-a").get_combined_status()
    assert combined.state == "success" and {s.context for s in combined.statuses} == {"ci/train", "ci/test"}
    assert repo.get_commit(new_sha).get_statuses().totalCount == 3
    with pytest.raises(GithubException) as exc:
        carol.get_repo("acme/churn-model").get_commit(new_sha).create_status("success", context="nope")
    assert exc.value.status == 403

    # merge (carol cannot, alice can)
    with pytest.raises(GithubException) as exc:
        c_pr.merge()
    assert exc.value.status == 403
    fresh = repo.get_pull(pr.number)
    assert fresh.mergeable is True
    base_before = repo.get_branch("main").commit.sha
    result = fresh.merge(commit_message="ship it")
    assert result.merged is True
    merged = repo.get_pull(pr.number)
    assert merged.merged and merged.state == "closed" and merged.merge_commit_sha == result.sha
    assert merged.merged_by.login == "alice"
    d = receiver.wait(
        lambda d: (
            d["event"] == "pull_request" and d["payload"]["action"] == "closed" and d["payload"]["number"] == pr.number
        )
    )
    assert d["payload"]["pull_request"]["merged"] is True
    assert d["payload"]["pull_request"]["merge_commit_sha"] == result.sha
    d = receiver.wait(
        lambda d: (
            d["event"] == "push" and d["payload"]["ref"] == "refs/heads/main" and d["payload"]["after"] == result.sha
        )
    )
    assert d["payload"]["before"] == base_before
    git("fetch", "-q", "origin", cwd=clone)
    parents = git("log", "-1", "--format=%P", "origin/main", cwd=clone).stdout.split()
    assert parents == [base_before, new_sha]
    assert f"Merge pull request #{pr.number}" in git("log", "-1", "--format=%B", "origin/main", cwd=clone).stdout
    with pytest.raises(GithubException) as exc:
        merged.merge()
    assert exc.value.status == 405


def test_close_reopen_and_edit(forge, receiver, clone):
    alice = gh(forge, "ghp_alice")
    repo = alice.get_repo("acme/churn-model")
    pr = repo.create_pull(base="main", head="bare-push", title="Bare", body="b")
    pr.edit(title="Bare push PR")
    d = receiver.wait(
        lambda d: (
            d["event"] == "pull_request" and d["payload"]["action"] == "edited" and d["payload"]["number"] == pr.number
        )
    )
    assert d["payload"]["changes"]["title"]["from"] == "Bare"
    pr.edit(state="closed")
    d = receiver.wait(
        lambda d: (
            d["event"] == "pull_request" and d["payload"]["action"] == "closed" and d["payload"]["number"] == pr.number
        )
    )
    assert d["payload"]["pull_request"]["merged"] is False
    pr.edit(state="open")
    receiver.wait(
        lambda d: (
            d["event"] == "pull_request"
            and d["payload"]["action"] == "reopened"
            and d["payload"]["number"] == pr.number
        )
    )
    assert [p.number for p in repo.get_pulls(state="open", head="acme:bare-push")] == [pr.number]
    assert repo.get_pulls(state="closed", base="main").totalCount >= 1


def test_collaborator_permissions(forge):
    repo = gh(forge, "ghp_bot").get_repo("acme/churn-model")
    expected = {"alice": "write", "bob": "admin", "carol": "read", "mlops-bot": "write"}
    for login, perm in expected.items():
        assert repo.get_collaborator_permission(login) == perm
    raw = requests.get(
        f"{forge['base']}/repos/acme/churn-model/collaborators/bob/permission",
        headers={"Authorization": "token ghp_alice"},
    ).json()
    assert raw["role_name"] == "admin" and raw["user"]["login"] == "bob"
    assert (
        requests.get(
            f"{forge['base']}/repos/acme/churn-model/collaborators/nobody/permission",
            headers={"Authorization": "token ghp_alice"},
        ).status_code
        == 404
    )


def test_delete_branch_via_api_fires_delete_and_push(forge, receiver):
    repo = gh(forge, "ghp_alice").get_repo("acme/churn-model")
    main_sha = repo.get_branch("main").commit.sha
    ref = repo.create_git_ref("refs/heads/tmp/to-delete", main_sha)
    d = receiver.wait(lambda d: d["event"] == "push" and d["payload"]["ref"] == "refs/heads/tmp/to-delete")
    assert d["payload"]["created"] is True and d["payload"]["commits"] == []
    assert repo.get_git_ref("heads/tmp/to-delete").object.sha == main_sha
    assert repo.get_branch("tmp/to-delete").commit.sha == main_sha
    assert "refs/heads/tmp/to-delete" in [r.ref for r in repo.get_git_refs()]
    with pytest.raises(GithubException) as exc:
        gh(forge, "ghp_carol").get_repo("acme/churn-model").get_git_ref("heads/tmp/to-delete").delete()
    assert exc.value.status == 403
    ref.delete()
    d = receiver.wait(lambda d: d["event"] == "delete" and d["payload"]["ref"] == "tmp/to-delete")
    assert d["payload"]["ref_type"] == "branch"
    d = receiver.wait(
        lambda d: d["event"] == "push" and d["payload"]["ref"] == "refs/heads/tmp/to-delete" and d["payload"]["deleted"]
    )
    assert d["payload"]["after"] == ZERO and d["payload"]["before"] == main_sha
    with pytest.raises(GithubException) as exc:
        repo.get_git_ref("heads/tmp/to-delete").ref  # noqa: B018 (the attribute access makes PyGithub call the API)
    assert exc.value.status == 404


def test_fork_pull_request(forge, receiver, tmp_path):
    carol = gh(forge, "ghp_carol")
    fork = carol.get_repo("acme/churn-model").create_fork()
    assert fork.full_name == "carol/churn-model" and fork.fork
    assert fork.parent.full_name == "acme/churn-model"
    wc = tmp_path / "fork"
    git("clone", "-q", fork.clone_url, str(wc))
    git("checkout", "-q", "-b", "fix", cwd=wc)
    sha = commit_file(wc, "fix.txt", "fix\n", "Fix from fork")
    git("push", "-q", push_url(forge, "carol", "ghp_carol", "carol/churn-model"), "fix", cwd=wc)
    base_repo = carol.get_repo("acme/churn-model")
    pr = base_repo.create_pull(base="main", head="carol:fix", title="Fork fix")
    assert pr.head.repo.full_name == "carol/churn-model" and pr.base.repo.full_name == "acme/churn-model"
    assert pr.head.label == "carol:fix" and pr.head.sha == sha
    d = receiver.wait(
        lambda d: (
            d["event"] == "pull_request" and d["payload"]["action"] == "opened" and d["payload"]["number"] == pr.number
        )
    )
    assert d["payload"]["pull_request"]["head"]["repo"]["full_name"] == "carol/churn-model"
    # push to the fork branch synchronizes the PR on the base repo
    sha2 = commit_file(wc, "fix.txt", "fix 2\n", "Fix more")
    git("push", "-q", push_url(forge, "carol", "ghp_carol", "carol/churn-model"), "fix", cwd=wc)
    d = receiver.wait(
        lambda d: (
            d["event"] == "pull_request"
            and d["payload"]["action"] == "synchronize"
            and d["payload"]["number"] == pr.number
        )
    )
    assert d["payload"]["after"] == sha2
    result = gh(forge, "ghp_bob").get_repo("acme/churn-model").get_pull(pr.number).merge()
    assert result.merged


def test_check_runs_need_app_installation(forge, app_keys):
    repo = gh(forge, "ghp_bot").get_repo("acme/churn-model")
    sha = repo.get_branch("main").commit.sha
    with pytest.raises(GithubException) as exc:
        repo.create_check_run(name="train", head_sha=sha)
    assert exc.value.status == 403
    app_auth = Auth.AppAuth(APP_ID, app_keys[0])
    inst = Github(base_url=forge["base"], auth=app_auth.get_installation_auth(INSTALLATION_ID), **FAST)
    irepo = inst.get_repo("acme/churn-model")
    run = irepo.create_check_run(
        name="train", head_sha=sha, status="in_progress", output={"title": "Training", "summary": "started"}
    )
    assert run.status == "in_progress" and run.app.slug == "mlops-bot"
    run.edit(conclusion="success", output={"title": "Trained", "summary": "auc 0.91"})
    assert run.status == "completed" and run.conclusion == "success"
    runs = list(irepo.get_commit(sha).get_check_runs())
    assert [(r.name, r.conclusion) for r in runs] == [("train", "success")]
    # the installation acts as mlops-bot[bot]
    statuses = irepo.get_commit(sha).create_status("success", context="bot")
    assert statuses.creator.login == "mlops-bot[bot]" and statuses.creator.type == "Bot"
    # a bad JWT is refused
    r = requests.post(
        f"{forge['base']}/app/installations/{INSTALLATION_ID}/access_tokens", headers={"Authorization": "Bearer a.b.c"}
    )
    assert r.status_code == 401


def _urls(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str) and (k.endswith("url") or k == "href" or v.startswith("http")):
                yield f"{path}.{k}", v
            else:
                yield from _urls(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _urls(v, f"{path}[{i}]")


def test_every_url_points_to_sandbox(forge, receiver):
    h = {"Authorization": "token ghp_alice"}
    base = forge["base"]
    repo = f"{base}/repos/acme/churn-model"
    docs = [
        requests.get(u, headers=h)
        for u in (
            f"{base}/user",
            f"{base}/users/bob",
            repo,
            f"{repo}/pulls?state=all",
            f"{repo}/pulls/1",
            f"{repo}/issues/1",
            f"{repo}/issues/1/comments",
            f"{repo}/branches/main",
            f"{repo}/commits/main",
            f"{repo}/commits/main/status",
            f"{repo}/git/refs/heads",
            f"{repo}/git/ref/heads/main",
            f"{repo}/commits/feature-a/statuses",
            f"{repo}/commits/main/check-runs",
            f"{base}/repos/carol/churn-model",
        )
    ]
    for r in docs:
        assert r.status_code == 200, r.url
        for where, url in _urls(r.json()):
            if url:
                assert url.startswith(base + "/"), (r.url, where, url)
    for d in receiver.find(lambda d: True):
        for where, url in _urls(d["payload"]):
            if url:
                assert url.startswith(base + "/"), (d["event"], where, url)
    page = requests.get(f"{base}/acme/churn-model/pull/1")
    assert page.status_code == 200 and "Add feature" in page.text and "/deploy prod" in page.text
    assert "<script" not in page.text and "https://" not in page.text


def test_pagination_and_introspection(forge, receiver):
    alice = gh(forge, "ghp_alice")
    repo = alice.get_repo("acme/churn-model")
    issue = repo.get_issue(1)
    for i in range(4):
        issue.create_comment(f"note {i}")
    r = requests.get(f"{forge['base']}/repos/acme/churn-model/issues/1/comments?per_page=2")
    assert len(r.json()) == 2 and 'rel="next"' in r.headers["Link"] and 'rel="last"' in r.headers["Link"]
    assert r.headers["Link"].startswith(f"<{forge['base']}/")
    paged = Github(base_url=forge["base"], auth=Auth.Token("ghp_alice"), per_page=2, **FAST)
    bodies = [c.body for c in paged.get_repo("acme/churn-model").get_issue(1).get_comments()]
    assert bodies[-4:] == [f"note {i}" for i in range(4)]

    requests.post(f"{forge['base']}/sandbox/requests/reset")
    repo.get_pull(1)
    gh(forge, "ghp_bob").get_repo("acme/churn-model")
    stats = requests.get(f"{forge['base']}/sandbox/requests").json()
    assert stats["by_route"]["GET /repos/{owner}/{repo}/pulls/{number}"] == 1
    assert stats["by_user"]["bob"] == 1

    deliveries = requests.get(f"{forge['base']}/sandbox/deliveries").json()["deliveries"]
    done = [d for d in deliveries if d["status_code"] == 200]
    assert done and all(d["response_body"] == "ok" and d["duration_ms"] is not None for d in done)
    guid = done[0]["guid"]
    r = requests.post(f"{forge['base']}/sandbox/deliveries/{guid}/redeliver")
    assert r.status_code == 202
    deadline = time.monotonic() + 10
    while len(receiver.find(lambda d: d["guid"] == guid)) < 2:
        assert time.monotonic() < deadline, "redelivery not received"
        time.sleep(0.05)
    first, again = receiver.find(lambda d: d["guid"] == guid)[:2]
    assert first["payload"] == again["payload"] and again["sig_ok"]
