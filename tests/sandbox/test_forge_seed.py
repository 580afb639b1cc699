"""The forge's seed `init_from`: a git repository comes in with every branch, tag and commit (so `devstack up` can host
someone's own repository); a plain directory, even one inside a repository, still becomes one first commit."""

from __future__ import annotations

import re

import pytest

from devstack.mlrepo import branch, git, make_repo
from sandbox.forge import create_app
from sandbox.forge.seed import SeedError, parse_seed

REPO = "acme/own-model"
ALICE = {"Authorization": "token ghp_alice"}


def seed(src, **repo) -> dict:
    return {
        "users": {"alice": {"token": "ghp_alice"}},
        "repos": [{"full_name": REPO, "init_from": str(src), "permissions": {"alice": "write"}, **repo}],
    }


def forge(tmp_path, src, **repo):
    return create_app(tmp_path / "forge", seed(src, **repo), "http://forge.test").test_client()


def branches(client) -> dict[str, str]:
    resp = client.get(f"/repos/{REPO}/branches", headers=ALICE)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {b["name"]: b["commit"]["sha"] for b in resp.get_json()}


def test_a_git_repository_comes_in_with_its_branches_tags_and_history(tmp_path):
    src = make_repo(tmp_path / "own-model")
    first = git(src, "rev-parse", "HEAD")
    feature = branch(src, "feature/better")
    git(src, "tag", "v1", first)
    client = forge(tmp_path, src)
    assert branches(client) == {"main": first, "feature/better": feature}
    commit = client.get(f"/repos/{REPO}/commits/feature/better", headers=ALICE).get_json()
    assert [p["sha"] for p in commit["parents"]] == [first]  # its history, not one squashed commit
    tag = client.get(f"/repos/{REPO}/git/ref/tags/v1", headers=ALICE).get_json()
    assert tag["object"]["sha"] == first
    assert client.get(f"/repos/{REPO}", headers=ALICE).get_json()["default_branch"] == "main"


def test_the_default_branch_may_be_any_of_the_repositorys_branches(tmp_path):
    src = make_repo(tmp_path / "own-model")
    dev = branch(src, "develop")
    client = forge(tmp_path, src, default_branch="develop")
    assert client.get(f"/repos/{REPO}", headers=ALICE).get_json()["default_branch"] == "develop"
    assert branches(client)["develop"] == dev


def test_a_plain_directory_inside_a_repository_is_still_one_first_commit(tmp_path):
    outer = make_repo(tmp_path / "outer", {"project/train.py": "print('hi')\n", "other.txt": "x\n"})
    client = forge(tmp_path, outer / "project")
    [(name, sha)] = branches(client).items()
    assert name == "main" and sha != git(outer, "rev-parse", "HEAD")
    listing = client.get(f"/repos/{REPO}/contents/", headers=ALICE).get_json()
    assert [e["path"] for e in listing] == ["train.py"]
    commit = client.get(f"/repos/{REPO}/commits/main", headers=ALICE).get_json()
    assert commit["parents"] == []  # one first commit, not the outer repository's history


def test_a_default_branch_the_repository_lacks_is_refused_with_its_branches(tmp_path):
    src = make_repo(tmp_path / "own-model")
    branch(src, "feature/x")
    why = "has no branch 'trunk' (its branches: feature/x, main); set default_branch to one of them"
    with pytest.raises(SeedError, match=re.escape(why)):
        parse_seed(seed(src, default_branch="trunk"), tmp_path)


def test_an_empty_repository_has_no_branch_to_start_from(tmp_path):
    src = tmp_path / "empty"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    with pytest.raises(SeedError, match=re.escape("has no branch 'main' (its branches: none)")):
        parse_seed(seed(src), tmp_path)
