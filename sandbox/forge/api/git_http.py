"""Git smart HTTP (clone, fetch, push) through `git http-backend`, with basic-auth tokens for pushes."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ...common import run_git
from ..vocabulary import PERM_RANK
from .hooks import token_user
from .web import forge

bp = Blueprint("git_http", __name__)


def plain(text: str | bytes, status: int, headers: dict | None = None) -> Response:
    return Response(text, status, headers, mimetype="text/plain")


def git_unauthorized(msg: str = "Authentication required") -> Response:
    return plain(msg + "\n", 401, {"WWW-Authenticate": 'Basic realm="sandbox forge"'})


def refusal(rec: dict, service: str) -> tuple[str | None, Response | None]:
    """(login, None) when the caller may use `service`, else (None, the answer git shows them)."""
    login = None
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        login = token_user(auth.password or "") or token_user(auth.username or "")
        if login is None:
            return None, git_unauthorized("Invalid username or token.")
    if service == "git-receive-pack":
        if login is None:
            return None, git_unauthorized()
        if PERM_RANK[forge.perm(rec, login)] < PERM_RANK["write"]:
            return None, plain(f"Permission to {rec['full_name']}.git denied to {login}.\n", 403)
    return login, None


def cgi_env(rec: dict, rest: str, login: str | None, body: bytes) -> dict[str, str]:
    env = {
        "GIT_PROJECT_ROOT": str(forge.repos_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{rec['full_name']}.git/{rest}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode("latin-1"),
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": request.remote_addr or "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
    }
    if login:
        env["REMOTE_USER"] = login
    if request.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
    if request.headers.get("Git-Protocol"):
        env["HTTP_GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    return env


def cgi_response(raw: bytes, stderr: bytes) -> Response:
    """Turn http-backend's CGI output (headers, blank line, body) into a response."""
    sep, sep_len = raw.find(b"\r\n\r\n"), 4
    if sep < 0:
        sep, sep_len = raw.find(b"\n\n"), 2
    if sep < 0:
        return plain(stderr or b"git http-backend failed\n", 500)
    status, headers = 200, {}
    for line in raw[:sep].decode("latin-1").splitlines():
        k, _, v = line.partition(":")
        if k.lower() == "status":
            status = int(v.strip().split()[0])
        elif k:
            headers[k.strip()] = v.strip()
    return Response(raw[sep + sep_len :], status, headers)


def git_http(owner: str, repo_git: str, rest: str) -> Response:
    if not repo_git.endswith(".git"):
        return plain("Not Found\n", 404)
    rec = forge.find_repo(owner, repo_git[:-4])
    if rec is None:
        return plain("Repository not found.\n", 404)
    service = request.args.get("service", "") if rest == "info/refs" else rest
    if service not in ("git-upload-pack", "git-receive-pack"):
        return plain("Only the smart HTTP protocol is supported\n", 403)
    login, refused = refusal(rec, service)
    if refused:
        return refused
    body = request.get_data()
    proc = run_git(["http-backend"], input=body, env=cgi_env(rec, rest, login, body), timeout=600, check=False)
    return cgi_response(proc.stdout, proc.stderr)


@bp.route("/<owner>/<repo_git>/info/refs", methods=["GET"])
def git_info_refs(owner, repo_git):
    return git_http(owner, repo_git, "info/refs")


@bp.route("/<owner>/<repo_git>/git-upload-pack", methods=["POST"])
def git_upload_pack(owner, repo_git):
    return git_http(owner, repo_git, "git-upload-pack")


@bp.route("/<owner>/<repo_git>/git-receive-pack", methods=["POST"])
def git_receive_pack(owner, repo_git):
    return git_http(owner, repo_git, "git-receive-pack")
