"""Branches, refs, commits, contents and a pull request's files, read from and written to the bare repos."""

from __future__ import annotations

import base64

from flask import Blueprint, request

from .. import gitops
from ..gitops import ZERO
from ..vocabulary import ApiError
from .web import body_json, forge, get_pr, need_user, no_content, paginate, reply, resolve_or

bp = Blueprint("git_data", __name__)


@bp.get("/repos/<owner>/<repo>/branches")
def list_branches(owner, repo):
    rec = forge.get_repo(owner, repo)
    api = f"{forge.base}/repos/{rec['full_name']}"
    refs = gitops.list_refs(forge.repo_path(rec), "refs/heads/")
    items = [
        {"name": r[11:], "commit": {"sha": s, "url": f"{api}/commits/{s}"}, "protected": False}
        for r, s in sorted(refs.items())
    ]
    chunk, headers = paginate(items)
    return reply(chunk, headers=headers)


@bp.get("/repos/<owner>/<repo>/branches/<path:branch>")
def get_branch(owner, repo, branch):
    rec = forge.get_repo(owner, repo)
    if not gitops.valid_branch(branch):
        raise ApiError(404, "Branch not found")
    sha = gitops.ref_sha(forge.repo_path(rec), f"refs/heads/{branch}")
    if sha is None:
        raise ApiError(404, "Branch not found")
    return reply(forge.branch_json(rec, branch, sha))


@bp.get("/repos/<owner>/<repo>/git/ref/<path:ref>")
def get_ref(owner, repo, ref):
    rec = forge.get_repo(owner, repo)
    full = f"refs/{ref}"
    if not gitops.valid_refname(full):
        raise ApiError(404, "Not Found")
    sha = gitops.list_refs(forge.repo_path(rec), full).get(full)
    if sha is None:
        raise ApiError(404, "Not Found")
    return reply(forge.ref_json(rec, full, sha))


def list_refs_json(rec: dict, prefix: str) -> list:
    refs = {}
    for p in ("refs/heads/", "refs/tags/"):
        refs.update(gitops.list_refs(forge.repo_path(rec), p))
    return [forge.ref_json(rec, r, s) for r, s in sorted(refs.items()) if r.startswith(prefix)]


@bp.get("/repos/<owner>/<repo>/git/refs")
def list_all_refs(owner, repo):
    rec = forge.get_repo(owner, repo)
    chunk, headers = paginate(list_refs_json(rec, "refs/"))
    return reply(chunk, headers=headers)


@bp.get("/repos/<owner>/<repo>/git/refs/<path:ref>")
def list_refs_prefix(owner, repo, ref):
    rec = forge.get_repo(owner, repo)
    full = f"refs/{ref}".rstrip("/")
    items = list_refs_json(rec, full)
    exact = [i for i in items if i["ref"] == full]
    if exact:
        return reply(exact[0])
    items = [i for i in items if i["ref"].startswith(full + "/")]
    if not items:
        raise ApiError(404, "Not Found")
    chunk, headers = paginate(items)
    return reply(chunk, headers=headers)


@bp.get("/repos/<owner>/<repo>/git/matching-refs/<path:ref>")
def matching_refs(owner, repo, ref):
    rec = forge.get_repo(owner, repo)
    chunk, headers = paginate(list_refs_json(rec, f"refs/{ref}"))
    return reply(chunk, headers=headers)


@bp.post("/repos/<owner>/<repo>/git/refs")
def create_ref(owner, repo):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    forge.require(rec, login, "write")
    body = body_json()
    ref, sha = body.get("ref") or "", body.get("sha") or ""
    if not gitops.valid_refname(ref) or not (ref.startswith("refs/heads/") or ref.startswith("refs/tags/")):
        raise ApiError(422, "Reference name is invalid" if ref else 'Invalid request.\n\n"ref" wasn\'t supplied.')
    path = forge.repo_path(rec)
    with forge.lock:
        if not gitops.valid_sha(sha) or gitops.resolve(path, sha) != sha:
            raise ApiError(422, "Object does not exist")
        if gitops.ref_sha(path, ref) is not None:
            raise ApiError(422, "Reference already exists")
        gitops.update_ref(path, ref, sha, ZERO)
        forge.process_ref_updates(rec, [(ZERO, sha, ref)], login)
        return reply(
            forge.ref_json(rec, ref, sha), 201, {"Location": f"{forge.base}/repos/{rec['full_name']}/git/{ref}"}
        )


def writable_ref(owner: str, repo: str, ref: str) -> tuple[str, dict, str]:
    """(login, repository, full ref name) of a ref a writer changes; GitHub calls a malformed name missing."""
    login = need_user()
    rec = forge.get_repo(owner, repo)
    forge.require(rec, login, "write")
    full = f"refs/{ref}"
    if not gitops.valid_refname(full):
        raise ApiError(422, "Reference does not exist")
    return login, rec, full


def existing_ref(path, full: str) -> str:
    """The sha `full` points at (under forge.lock)."""
    old = gitops.list_refs(path, full).get(full)
    if old is None:
        raise ApiError(422, "Reference does not exist")
    return old


@bp.patch("/repos/<owner>/<repo>/git/refs/<path:ref>")
def update_ref(owner, repo, ref):
    login, rec, full = writable_ref(owner, repo, ref)
    body = body_json()
    sha, force = body.get("sha") or "", bool(body.get("force", False))
    path = forge.repo_path(rec)
    with forge.lock:
        old = existing_ref(path, full)
        if not gitops.valid_sha(sha) or gitops.resolve(path, sha) != sha:
            raise ApiError(422, "Object does not exist")
        if not force and not gitops.is_ancestor(path, old, sha):
            raise ApiError(422, "Update is not a fast forward")
        if old != sha:
            gitops.update_ref(path, full, sha, old)
            forge.process_ref_updates(rec, [(old, sha, full)], login)
        return reply(forge.ref_json(rec, full, sha))


@bp.delete("/repos/<owner>/<repo>/git/refs/<path:ref>")
def delete_ref(owner, repo, ref):
    login, rec, full = writable_ref(owner, repo, ref)
    path = forge.repo_path(rec)
    with forge.lock:
        old = existing_ref(path, full)
        if full == f"refs/heads/{rec['default_branch']}":
            raise ApiError(422, "Cannot delete the default branch of a repository")
        gitops.delete_ref(path, full, old)
        forge.process_ref_updates(rec, [(old, ZERO, full)], login)
    return no_content()


@bp.get("/repos/<owner>/<repo>/git/commits/<sha>")
def get_git_commit(owner, repo, sha):
    rec = forge.get_repo(owner, repo)
    if not gitops.valid_sha(sha) or gitops.resolve(forge.repo_path(rec), sha) != sha:
        raise ApiError(404, "Not Found")
    return reply(forge.git_commit_json(rec, sha))


@bp.get("/repos/<owner>/<repo>/commits/<path:ref>")
def get_commit(owner, repo, ref):
    rec = forge.get_repo(owner, repo)
    sha = resolve_or(rec, ref, 422, f"No commit found for SHA: {ref}")
    return reply(forge.commit_json(rec, sha))


def content_item(rec: dict, commit: str, ref: str, e: dict, with_content: bool) -> dict:
    full = rec["full_name"]
    kind = {"blob": "file", "tree": "dir", "commit": "submodule"}.get(e["type"], "file")
    if e["mode"] == "120000":
        kind = "symlink"
    api = f"{forge.base}/repos/{full}/contents/{e['path']}?ref={ref}"
    html_url = f"{forge.base}/{full}/{'blob' if kind != 'dir' else 'tree'}/{ref}/{e['path']}"
    git_url = f"{forge.base}/repos/{full}/git/{'blobs' if kind != 'dir' else 'trees'}/{e['sha']}"
    d = {
        "type": kind,
        "size": e["size"] if kind != "dir" else 0,
        "name": e["path"].rsplit("/", 1)[-1],
        "path": e["path"],
        "sha": e["sha"],
        "url": api,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": f"{forge.base}/{full}/raw/{commit}/{e['path']}" if kind == "file" else None,
        "_links": {"self": api, "git": git_url, "html": html_url},
    }
    if with_content and kind == "file":
        d["encoding"] = "base64"
        d["content"] = base64.encodebytes(gitops.cat_blob(forge.repo_path(rec), e["sha"])).decode()
    return d


@bp.get("/repos/<owner>/<repo>/contents/")
@bp.get("/repos/<owner>/<repo>/contents/<path:path>")
def get_contents(owner, repo, path=""):
    rec = forge.get_repo(owner, repo)
    path = path.strip("/")
    if any(part in ("", ".", "..") for part in path.split("/")) and path:
        raise ApiError(404, "Not Found")
    ref = request.args.get("ref") or rec["default_branch"]
    commit = resolve_or(rec, ref, 404, f"No commit found for the ref {ref}")
    entries = gitops.ls_tree(forge.repo_path(rec), commit, path)
    if not entries:
        raise ApiError(404, "Not Found")
    if len(entries) == 1 and entries[0].get("self"):
        if entries[0]["type"] == "tree":
            entries = gitops.ls_tree(forge.repo_path(rec), commit, path + "/")
        else:
            return reply(content_item(rec, commit, ref, entries[0], True))
    return reply([content_item(rec, commit, ref, e, False) for e in entries])


@bp.get("/repos/<owner>/<repo>/pulls/<int:number>/files")
def pull_files(owner, repo, number):
    rec = forge.get_repo(owner, repo)
    pr = get_pr(rec, number)
    mi = forge.pr_merge_info(rec, pr)
    files = gitops.diff_files(forge.repo_path(rec), mi["base_sha"], pr["head_sha"])
    items = [{**forge.file_json(rec, pr["head_sha"], f), "patch": f["patch"]} for f in files]
    chunk, headers = paginate(items)
    return reply(chunk, headers=headers)
