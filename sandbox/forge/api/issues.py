"""Issues, issue comments and their reactions."""

from __future__ import annotations

from flask import Blueprint, request

from ..vocabulary import REACTIONS, ApiError, now_iso, validation_error
from .pulls import edit_pull
from .web import body_json, forge, get_comment, get_issue, need_user, no_content, paginate, reply

bp = Blueprint("issues", __name__)


@bp.get("/repos/<owner>/<repo>/issues")
def list_issues(owner, repo):
    rec = forge.get_repo(owner, repo)
    state = request.args.get("state", "open")
    items = list(rec["issues"].values())
    if state in ("open", "closed"):
        items = [i for i in items if i["state"] == state]
    items.sort(key=lambda i: i["number"], reverse=request.args.get("direction", "desc") == "desc")
    chunk, headers = paginate(items)
    return reply([forge.issue_json(rec, i) for i in chunk], headers=headers)


@bp.post("/repos/<owner>/<repo>/issues")
def create_issue(owner, repo):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    body = body_json()
    if not body.get("title"):
        raise validation_error(resource="Issue", field="title", code="missing_field")
    with forge.lock:
        number = rec["next_number"]
        rec["next_number"] = number + 1
        ts = now_iso()
        issue = {
            "kind": "issue",
            "number": number,
            "id": forge.next_id("issue"),
            "title": body["title"],
            "body": body.get("body"),
            "user": login,
            "state": "open",
            "created_at": ts,
            "updated_at": ts,
        }
        rec["issues"][str(number)] = issue
        forge.save_soon()
        data = forge.issue_json(rec, issue)
        forge.emit(rec, "issues", {"action": "opened", "issue": data}, login)
        return reply(data, 201)


def comment_text() -> str:
    """The comment's text in the request's body: GitHub refuses a comment without one."""
    text = body_json().get("body")
    if not isinstance(text, str) or not text:
        raise validation_error(resource="IssueComment", field="body", code="missing_field")
    return text


@bp.get("/repos/<owner>/<repo>/issues/<int:number>")
def get_issue_route(owner, repo, number):
    rec = forge.get_repo(owner, repo)
    return reply(forge.issue_json(rec, get_issue(rec, number)))


@bp.patch("/repos/<owner>/<repo>/issues/<int:number>")
def update_issue(owner, repo, number):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    body = body_json()
    with forge.lock:
        issue = get_issue(rec, number)
        if issue.get("kind") == "pr":
            edit_pull(rec, issue, body, login)
        else:
            if login != issue["user"]:
                forge.require(rec, login, "triage")
            changes = {}
            for field in ("title", "body"):
                if field in body and body[field] != issue.get(field):
                    changes[field] = {"from": issue.get(field)}
                    issue[field] = body[field]
            state = body.get("state")
            action = None
            if state == "closed" and issue["state"] == "open":
                issue.update(
                    state="closed",
                    closed_at=now_iso(),
                    closed_by=login,
                    state_reason=body.get("state_reason") or "completed",
                )
                action = "closed"
            elif state == "open" and issue["state"] == "closed":
                issue.update(state="open", closed_at=None, closed_by=None, state_reason="reopened")
                action = "reopened"
            issue["updated_at"] = now_iso()
            forge.save_soon()
            if changes:
                forge.emit(
                    rec,
                    "issues",
                    {"action": "edited", "changes": changes, "issue": forge.issue_json(rec, issue)},
                    login,
                )
            if action:
                forge.emit(rec, "issues", {"action": action, "issue": forge.issue_json(rec, issue)}, login)
        return reply(forge.issue_json(rec, issue))


@bp.post("/repos/<owner>/<repo>/issues/<int:number>/comments")
def create_comment(owner, repo, number):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    text = comment_text()
    with forge.lock:
        issue = get_issue(rec, number)
        ts = now_iso()
        c = {
            "id": forge.next_id("comment"),
            "repo": rec["full_name"],
            "number": number,
            "user": login,
            "body": text,
            "created_at": ts,
            "updated_at": ts,
        }
        forge.state["comments"][str(c["id"])] = c
        issue["updated_at"] = ts
        forge.save_soon()
        data = forge.comment_json(rec, c)
        forge.emit(
            rec, "issue_comment", {"action": "created", "issue": forge.issue_json(rec, issue), "comment": data}, login
        )
        return reply(data, 201, {"Location": data["url"]})


@bp.get("/repos/<owner>/<repo>/issues/<int:number>/comments")
def list_comments(owner, repo, number):
    rec = forge.get_repo(owner, repo)
    get_issue(rec, number)
    items = sorted(
        (c for c in forge.state["comments"].values() if c["repo"] == rec["full_name"] and c["number"] == number),
        key=lambda c: c["id"],
    )
    if request.args.get("since"):
        items = [c for c in items if c["updated_at"] >= request.args["since"]]
    chunk, headers = paginate(items)
    return reply([forge.comment_json(rec, c) for c in chunk], headers=headers)


@bp.get("/repos/<owner>/<repo>/issues/comments")
def list_repo_comments(owner, repo):
    rec = forge.get_repo(owner, repo)
    items = sorted(
        (c for c in forge.state["comments"].values() if c["repo"] == rec["full_name"]), key=lambda c: c["id"]
    )
    # "since: Only show results that were last updated after the given time." (ISO 8601, as the stamps here)
    if request.args.get("since"):
        items = [c for c in items if c["updated_at"] >= request.args["since"]]
    # "sort: The property to sort the results by." (created | updated); "direction: … Ignored without the sort
    # parameter." (default desc)
    sort = request.args.get("sort")
    if sort in ("created", "updated"):
        items.sort(key=lambda c: (c[f"{sort}_at"], c["id"]), reverse=request.args.get("direction", "desc") != "asc")
    chunk, headers = paginate(items)
    return reply([forge.comment_json(rec, c) for c in chunk], headers=headers)


@bp.get("/repos/<owner>/<repo>/issues/comments/<int:cid>")
def get_comment_route(owner, repo, cid):
    rec = forge.get_repo(owner, repo)
    return reply(forge.comment_json(rec, get_comment(rec, cid)))


@bp.patch("/repos/<owner>/<repo>/issues/comments/<int:cid>")
def edit_comment(owner, repo, cid):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    text = comment_text()
    with forge.lock:
        c = get_comment(rec, cid)
        if c["user"] != login:
            raise ApiError(403, "Only the author of a comment can edit it")
        old = c["body"]
        c["body"] = text
        c["updated_at"] = now_iso()
        forge.save_soon()
        data = forge.comment_json(rec, c)
        if old != text:
            issue = get_issue(rec, c["number"])
            forge.emit(
                rec,
                "issue_comment",
                {
                    "action": "edited",
                    "changes": {"body": {"from": old}},
                    "issue": forge.issue_json(rec, issue),
                    "comment": data,
                },
                login,
            )
        return reply(data)


@bp.delete("/repos/<owner>/<repo>/issues/comments/<int:cid>")
def delete_comment(owner, repo, cid):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    with forge.lock:
        c = get_comment(rec, cid)
        if c["user"] != login:
            forge.require(rec, login, "write")
        data = forge.comment_json(rec, c)
        del forge.state["comments"][str(cid)]
        for rid in [k for k, r in forge.state["reactions"].items() if r["comment_id"] == cid]:
            del forge.state["reactions"][rid]
        forge.save_soon()
        issue = get_issue(rec, c["number"])
        forge.emit(
            rec, "issue_comment", {"action": "deleted", "issue": forge.issue_json(rec, issue), "comment": data}, login
        )
    return no_content()


@bp.post("/repos/<owner>/<repo>/issues/comments/<int:cid>/reactions")
def create_reaction(owner, repo, cid):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    body = body_json()
    content = body.get("content")
    if content not in REACTIONS:
        raise validation_error(resource="Reaction", field="content", code="invalid")
    with forge.lock:
        get_comment(rec, cid)
        for r in forge.state["reactions"].values():
            if r["comment_id"] == cid and r["user"] == login and r["content"] == content:
                return reply(forge.reaction_json(r), 200)
        r = {
            "id": forge.next_id("reaction"),
            "comment_id": cid,
            "user": login,
            "content": content,
            "created_at": now_iso(),
        }
        forge.state["reactions"][str(r["id"])] = r
        forge.save_soon()
        return reply(forge.reaction_json(r), 201)


@bp.get("/repos/<owner>/<repo>/issues/comments/<int:cid>/reactions")
def list_reactions(owner, repo, cid):
    rec = forge.get_repo(owner, repo)
    get_comment(rec, cid)
    items = sorted((r for r in forge.state["reactions"].values() if r["comment_id"] == cid), key=lambda r: r["id"])
    if request.args.get("content"):
        items = [r for r in items if r["content"] == request.args["content"]]
    chunk, headers = paginate(items)
    return reply([forge.reaction_json(r) for r in chunk], headers=headers)


@bp.delete("/repos/<owner>/<repo>/issues/comments/<int:cid>/reactions/<int:rid>")
def delete_reaction(owner, repo, cid, rid):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    with forge.lock:
        get_comment(rec, cid)
        r = forge.state["reactions"].get(str(rid))
        if r is None or r["comment_id"] != cid:
            raise ApiError(404, "Not Found")
        if r["user"] != login:
            raise ApiError(403, "Must have admin rights to Repository.")
        del forge.state["reactions"][str(rid)]
        forge.save_soon()
    return no_content()
