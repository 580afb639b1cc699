"""What every forge API view uses: the app's Forge, JSON replies, the request body, pagination, lookups."""

from __future__ import annotations

import math
from urllib.parse import urlencode

from flask import Response, current_app, g, jsonify, request
from werkzeug.local import LocalProxy

from .. import gitops
from ..core import Forge
from ..vocabulary import ApiError

# The Forge of the app serving this request (set by create_app in app.extensions["forge"]).
forge: Forge = LocalProxy(lambda: current_app.extensions["forge"])  # type: ignore[assignment]


def reply(data, status: int = 200, headers: dict | None = None) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


def no_content() -> Response:
    return Response(status=204)


def body_json() -> dict:
    if not request.get_data():
        return {}
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise ApiError(400, "Problems parsing JSON")
    return data


def need_user() -> str:
    if g.user is None:
        raise ApiError(401, "Requires authentication")
    return g.user


def need_app() -> dict:
    """The GitHub App authenticated by its JWT."""
    if g.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")
    return g.app


def paginate(items: list) -> tuple[list, dict]:
    """One page of `items` and its Link header, from ?page= and ?per_page= like GitHub."""
    try:
        per_page = min(100, max(1, int(request.args.get("per_page", 30))))
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        per_page, page = 30, 1
    last = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]

    def url(p: int) -> str:
        params = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}
        params["per_page"] = per_page
        params["page"] = p
        return f"{forge.base}{request.path}?{urlencode(params)}"

    links = []
    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(1)}>; rel="first"', f'<{url(min(page - 1, last))}>; rel="prev"']
    return chunk, ({"Link": ", ".join(links)} if links else {})


def reply_page(items: list) -> Response:
    chunk, headers = paginate(items)
    return reply(chunk, headers=headers)


def resolve_or(rec: dict, rev: str, status: int = 404, message: str = "Not Found") -> str:
    sha = gitops.resolve(forge.repo_path(rec), rev)
    if sha is None:
        raise ApiError(status, message)
    return sha


def get_issue(rec: dict, number: int) -> dict:
    issue = rec["issues"].get(str(number))
    if issue is None:
        raise ApiError(404, "Not Found")
    return issue


def get_pr(rec: dict, number: int) -> dict:
    issue = get_issue(rec, number)
    if issue.get("kind") != "pr":
        raise ApiError(404, "Not Found")
    return issue


def get_comment(rec: dict, cid: int) -> dict:
    c = forge.state["comments"].get(str(cid))
    if c is None or c["repo"] != rec["full_name"]:
        raise ApiError(404, "Not Found")
    return c
