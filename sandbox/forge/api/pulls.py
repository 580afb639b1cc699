"""Pull requests: open, list, edit, merge."""

from __future__ import annotations

from flask import Blueprint, request

from .. import gitops
from ..vocabulary import ApiError, now_iso, validation_error
from .web import body_json, forge, get_pr, need_user, no_content, paginate, reply, resolve_or

bp = Blueprint("pulls", __name__)


def find_head_repo(rec: dict, head_owner: str, head_repo_name: str | None) -> dict | None:
    if head_owner.lower() == rec["owner"].lower() and not head_repo_name:
        return rec
    if head_repo_name:
        cand = forge.find_repo(head_owner, head_repo_name)
        return cand
    cand = forge.find_repo(head_owner, rec["name"])
    if cand is not None and (cand is rec or cand.get("fork_of") == rec["full_name"]):
        return cand
    for r in forge.state["repos"].values():
        if r["owner"].lower() == head_owner.lower() and r.get("fork_of") == rec["full_name"]:
            return r
    return None


@bp.post("/repos/<owner>/<repo>/pulls")
def create_pull(owner, repo):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    body = body_json()
    head_spec, base_ref = body.get("head") or "", body.get("base") or ""
    if not head_spec:
        raise validation_error(field="head", code="missing_field")
    if not base_ref:
        raise validation_error(field="base", code="missing_field")
    title = body.get("title")
    if not title:
        raise validation_error(field="title", code="missing_field")
    if ":" in head_spec:
        head_owner, head_ref = head_spec.split(":", 1)
    else:
        head_owner, head_ref = rec["owner"], head_spec
    head_repo_name = None
    if body.get("head_repo"):
        hr = str(body["head_repo"])
        head_owner, _, head_repo_name = hr.rpartition("/") if "/" in hr else (head_owner, "", hr)
    if not gitops.valid_branch(head_ref) or not gitops.valid_login(head_owner):
        raise validation_error(field="head", code="invalid")
    if not gitops.valid_branch(base_ref):
        raise validation_error(field="base", code="invalid")
    with forge.lock:
        head_rec = find_head_repo(rec, head_owner, head_repo_name)
        if head_rec is None:
            raise validation_error(field="head", code="invalid")
        path = forge.repo_path(rec)
        head_sha = gitops.ref_sha(forge.repo_path(head_rec), f"refs/heads/{head_ref}")
        if head_sha is None:
            raise validation_error(field="head", code="invalid")
        base_sha = gitops.ref_sha(path, f"refs/heads/{base_ref}")
        if base_sha is None:
            raise validation_error(field="base", code="invalid")
        for other in rec["issues"].values():
            if (
                other.get("kind") == "pr"
                and other["state"] == "open"
                and other["head_repo"] == head_rec["full_name"]
                and other["head_ref"] == head_ref
                and other["base_ref"] == base_ref
            ):
                raise validation_error(f"A pull request already exists for {head_rec['owner']}:{head_ref}.")
        number = rec["next_number"]
        pr = {
            "kind": "pr",
            "number": number,
            "id": forge.next_id("issue"),
            "pr_id": forge.next_id("pull"),
            "title": title,
            "body": body.get("body"),
            "user": login,
            "state": "open",
            "head_repo": head_rec["full_name"],
            "head_ref": head_ref,
            "head_sha": head_sha,
            "base_ref": base_ref,
            "base_sha": base_sha,
            "merged": False,
            "created_at": now_iso(),
        }
        pr["updated_at"] = pr["created_at"]
        forge._store_pr_head(rec, pr, head_rec, head_sha)
        if gitops.count_commits(path, base_sha, head_sha) == 0:
            gitops.delete_ref(path, f"refs/pull/{number}/head")
            raise validation_error(f"No commits between {base_ref} and {head_spec}")
        rec["next_number"] = number + 1
        rec["issues"][str(number)] = pr
        forge.save_soon()
        data = forge.pr_json(rec, pr)
        forge.emit(rec, "pull_request", {"action": "opened", "number": number, "pull_request": data}, login)
        return reply(data, 201, {"Location": data["url"]})


@bp.get("/repos/<owner>/<repo>/pulls")
def list_pulls(owner, repo):
    rec = forge.get_repo(owner, repo)
    state = request.args.get("state", "open")
    prs = [i for i in rec["issues"].values() if i.get("kind") == "pr"]
    if state in ("open", "closed"):
        prs = [p for p in prs if p["state"] == state]
    if request.args.get("head"):
        h_owner, _, h_ref = request.args["head"].partition(":")
        if h_ref:
            prs = [p for p in prs if p["head_repo"].split("/")[0].lower() == h_owner.lower() and p["head_ref"] == h_ref]
        else:
            prs = [p for p in prs if p["head_repo"].split("/")[0].lower() == h_owner.lower()]
    if request.args.get("base"):
        prs = [p for p in prs if p["base_ref"] == request.args["base"]]
    sort = request.args.get("sort", "created")
    key = "updated_at" if sort in ("updated", "long-running") else "created_at"
    desc = request.args.get("direction", "desc") == "desc"
    prs.sort(key=lambda p: (p[key], p["number"]), reverse=desc)
    chunk, headers = paginate(prs)
    return reply([forge.pr_json(rec, p) for p in chunk], headers=headers)


@bp.get("/repos/<owner>/<repo>/commits/<commit_sha>/pulls")
def pulls_of_commit(owner, repo, commit_sha):
    """repos/list-pull-requests-associated-with-commit: "Lists the merged pull request that introduced the commit
    to the repository. If the commit is not present in the default branch, it will return merged and open pull
    requests associated with the commit." A fork's head commit is in the base repository (refs/pull/N/head)."""
    rec = forge.get_repo(owner, repo)
    path = forge.repo_path(rec)
    sha = resolve_or(rec, commit_sha, 422, f"No commit found for SHA: {commit_sha}")
    default = gitops.ref_sha(path, f"refs/heads/{rec['default_branch']}")
    on_default = default is not None and gitops.is_ancestor(path, sha, default)
    prs = [
        p
        for p in rec["issues"].values()
        if p.get("kind") == "pr"
        and (p.get("merged") or (p["state"] == "open" and not on_default))
        and pr_has_commit(rec, p, sha)
    ]
    prs.sort(key=lambda p: p["number"], reverse=True)
    chunk, headers = paginate(prs)
    return reply([forge.pr_json(rec, p) for p in chunk], headers=headers)


def pr_has_commit(rec: dict, pr: dict, sha: str) -> bool:
    if sha in (pr["head_sha"], pr.get("merge_commit_sha")):
        return True
    base = forge.pr_merge_info(rec, pr)["base_sha"]
    return sha in gitops.rev_list(forge.repo_path(rec), pr["head_sha"], [base], limit=250)


@bp.get("/repos/<owner>/<repo>/pulls/<int:number>")
def get_pull(owner, repo, number):
    rec = forge.get_repo(owner, repo)
    return reply(forge.pr_json(rec, get_pr(rec, number)))


@bp.get("/repos/<owner>/<repo>/pulls/<int:number>/commits")
def pull_commits(owner, repo, number):
    rec = forge.get_repo(owner, repo)
    pr = get_pr(rec, number)
    mi = forge.pr_merge_info(rec, pr)
    shas = gitops.rev_list(forge.repo_path(rec), pr["head_sha"], [mi["base_sha"]], limit=250)
    chunk, headers = paginate(shas)
    return reply([forge.commit_json(rec, s, with_files=False) for s in chunk], headers=headers)


def edit_pull(rec: dict, pr: dict, body: dict, login: str) -> None:
    if login != pr["user"]:
        forge.require(rec, login, "write")
    changes = {}
    for field in ("title", "body"):
        if field in body and body[field] != pr.get(field):
            if field == "title" and not body[field]:
                raise validation_error(field="title", code="missing_field")
            changes[field] = {"from": pr.get(field)}
            pr[field] = body[field]
    if "base" in body and body["base"] != pr["base_ref"]:
        if (
            not gitops.valid_branch(str(body["base"]))
            or gitops.ref_sha(forge.repo_path(rec), f"refs/heads/{body['base']}") is None
        ):
            raise validation_error(field="base", code="invalid")
        changes["base"] = {"ref": {"from": pr["base_ref"]}, "sha": {"from": pr.get("base_sha")}}
        pr["base_ref"] = body["base"]
    if changes:
        pr["updated_at"] = now_iso()
        forge.save_soon()
        forge.emit(
            rec,
            "pull_request",
            {"action": "edited", "number": pr["number"], "changes": changes, "pull_request": forge.pr_json(rec, pr)},
            login,
        )
    state = body.get("state")
    if state == "closed" and pr["state"] == "open":
        forge.close_pr(rec, pr, login)
        forge.save_soon()
    elif state == "open" and pr["state"] == "closed":
        if pr.get("merged"):
            raise validation_error("Cannot reopen a merged pull request")
        head_rec = forge.state["repos"].get(pr["head_repo"])
        head_sha = head_rec and gitops.ref_sha(forge.repo_path(head_rec), f"refs/heads/{pr['head_ref']}")
        if not head_sha:
            raise validation_error("state cannot be changed. The head branch was deleted.")
        forge._store_pr_head(rec, pr, head_rec, head_sha)
        pr.update(state="open", closed_at=None, closed_by=None, head_sha=head_sha, updated_at=now_iso())
        forge.save_soon()
        forge.emit(
            rec,
            "pull_request",
            {"action": "reopened", "number": pr["number"], "pull_request": forge.pr_json(rec, pr)},
            login,
        )
    elif state not in (None, "open", "closed"):
        raise validation_error(field="state", code="invalid")


@bp.patch("/repos/<owner>/<repo>/pulls/<int:number>")
def update_pull(owner, repo, number):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    body = body_json()
    with forge.lock:
        pr = get_pr(rec, number)
        edit_pull(rec, pr, body, login)
        return reply(forge.pr_json(rec, pr))


@bp.get("/repos/<owner>/<repo>/pulls/<int:number>/merge")
def is_merged(owner, repo, number):
    rec = forge.get_repo(owner, repo)
    pr = get_pr(rec, number)
    if pr.get("merged"):
        return no_content()
    raise ApiError(404, "Not Found")


@bp.put("/repos/<owner>/<repo>/pulls/<int:number>/merge")
def merge_pull(owner, repo, number):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    forge.require(rec, login, "write")
    body = body_json()
    method = body.get("merge_method", "merge")
    if method not in ("merge", "squash", "rebase"):
        raise validation_error(resource="PullRequest", field="merge_method", code="invalid")
    if method == "rebase":
        raise ApiError(405, "Rebase merges are not allowed on this repository.")
    path = forge.repo_path(rec)
    with forge.lock:
        pr = get_pr(rec, number)
        if pr["state"] != "open":
            raise ApiError(405, "Pull Request is not mergeable")
        if body.get("sha") and body["sha"] != pr["head_sha"]:
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        ref = f"refs/heads/{pr['base_ref']}"
        base_sha = gitops.ref_sha(path, ref)
        if base_sha is None:
            raise ApiError(405, "Pull Request is not mergeable")
        tree = gitops.merge_tree(path, base_sha, pr["head_sha"])
        if tree is None:
            raise ApiError(405, "Pull Request is not mergeable")
        head_label = f"{pr['head_repo'].split('/')[0]}/{pr['head_ref']}"
        if method == "merge":
            title = body.get("commit_title") or f"Merge pull request #{number} from {head_label}"
            message = body.get("commit_message") if body.get("commit_message") is not None else pr["title"]
            parents = [base_sha, pr["head_sha"]]
        else:
            title = body.get("commit_title") or f"{pr['title']} (#{number})"
            if body.get("commit_message") is not None:
                message = body["commit_message"]
            else:
                shas = gitops.rev_list(path, pr["head_sha"], [base_sha], limit=250)
                message = "\n\n".join("* " + gitops.commit_info(path, s)["message"] for s in shas)
            parents = [base_sha]
        full_message = title + ("\n\n" + message if message else "") + "\n"
        who = (forge.user_name(login), forge.user_email(login))
        new = gitops.commit_tree(path, tree, parents, full_message, who, who)
        try:
            gitops.update_ref(path, ref, new, base_sha)
        except gitops.GitError:
            raise ApiError(409, "Base branch was modified. Review and try the merge again.") from None
        forge.mark_merged(pr, login, new, base_sha)
        forge.process_ref_updates(rec, [(base_sha, new, ref)], login)
        forge.emit_closed(rec, pr, login)
        forge.save_soon()
        return reply({"sha": new, "merged": True, "message": "Pull Request successfully merged"})
