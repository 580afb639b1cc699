"""The HTML pages people click through to: repository, issue/PR (also .diff/.patch), raw file, commit."""

from __future__ import annotations

from flask import Blueprint, Response

from .. import gitops, pages
from .web import forge

bp = Blueprint("pages", __name__)


def html(text: str, status: int = 200) -> Response:
    return Response(text, status, mimetype="text/html")


@bp.get("/")
def html_index():
    return html(pages.index_page(forge))


@bp.get("/<owner>/<repo>")
def html_repo(owner, repo):
    rec = forge.find_repo(owner, repo)
    if rec is None:
        return html(pages.not_found(), 404)
    return html(pages.repo_page(forge, rec))


@bp.get("/<owner>/<repo>/pull/<spec>")
@bp.get("/<owner>/<repo>/issues/<spec>")
def html_issue(owner, repo, spec):
    rec = forge.find_repo(owner, repo)
    number, _, ext = spec.partition(".")
    if rec is None or not number.isdigit() or str(int(number)) not in rec["issues"]:
        return html(pages.not_found(), 404)
    issue = rec["issues"][str(int(number))]
    if ext in ("diff", "patch") and issue.get("kind") == "pr":
        mi = forge.pr_merge_info(rec, issue)
        text = gitops.diff_text(forge.repo_path(rec), mi["base_sha"], issue["head_sha"])
        return Response(text, mimetype="text/plain")
    if ext:
        return html(pages.not_found(), 404)
    return html(pages.issue_page(forge, rec, issue))


@bp.get("/<owner>/<repo>/raw/<sha>/<path:path>")
def raw_file(owner, repo, sha, path):
    rec = forge.find_repo(owner, repo)
    if rec is None or not gitops.valid_short_sha(sha) or ".." in path.split("/"):
        return Response("Not Found\n", 404, mimetype="text/plain")
    commit = gitops.resolve(forge.repo_path(rec), sha)
    entries = gitops.ls_tree(forge.repo_path(rec), commit, path) if commit else []
    if len(entries) != 1 or not entries[0].get("self") or entries[0]["type"] != "blob":
        return Response("Not Found\n", 404, mimetype="text/plain")
    return Response(gitops.cat_blob(forge.repo_path(rec), entries[0]["sha"]), mimetype="text/plain")


@bp.get("/<owner>/<repo>/commit/<sha>")
def html_commit(owner, repo, sha):
    rec = forge.find_repo(owner, repo)
    if rec is None or not gitops.valid_short_sha(sha):
        return html(pages.not_found(), 404)
    full = gitops.resolve(forge.repo_path(rec), sha)
    if full is None:
        return html(pages.not_found(), 404)
    return html(pages.commit_page(forge, rec, full))
