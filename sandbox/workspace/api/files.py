"""The files area behind Unity Catalog's default storage, as MLflow's `PresignedUrlArtifactRepository` uses it.

* `POST /api/2.0/fs/create-upload-url {path}` → `{url, headers}` for a file of a version still
  PENDING_REGISTRATION; `POST /api/2.0/fs/create-download-url {path}` → `{url, headers}` for an existing file
  (else 404 `NOT_FOUND`). Paths are `/Models/<catalog>/<schema>/<model>/<version>/<file>`.
* `GET /api/2.0/fs/directories/Models/...` → `{contents: [{path, is_directory, file_size, last_modified, name}],
  next_page_token?}` (`page_size` ≤ 1000, `page_token`); a path that is not a directory → 404 with error_code
  exactly `NOT_FOUND` (the client reads that as "not a directory"); a version without files lists empty.
* The URLs are absolute, point at this server, and live outside `/api/`: the client's PUT and GET carry no
  Authorization header (as with cloud storage), so an HMAC signature and an expiry in the query string
  authorise them; a bad or expired one is 403. The upload URL requires the headers handed out with it.
Every path is split into segments; empty, `.` and `..` segments are refused and the resolved file must lie
under DATA/uc-files: nothing outside the data directory is ever read or written.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, jsonify, request, send_file

from .uc_grants import may_read, must_own
from .uc_registry import attach_registry, full_name, registry, version_number
from .web import ApiError, bad, decode_token, encode_token, integer, json_body

bp = Blueprint("uc_files", __name__)
attach_registry(bp)
FS = "/api/2.0/fs"
PRESIGNED = "/presigned/uc-files"
URL_TTL = 15 * 60  # seconds
UPLOAD_HEADERS = [{"name": "Content-Type", "value": "application/octet-stream"}]
PAGE_SIZE = 1000


def make_signing_key(setup) -> None:
    # A new key per process: URLs from before a restart fail with 403 and the client asks for new ones.
    setup.app.extensions.setdefault("uc_files.key", secrets.token_bytes(32))


bp.record_once(make_signing_key)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def segments(path: object) -> list[str]:
    """The segments of an absolute path; empty, `.` and `..` segments, NUL and backslashes are refused."""
    if not isinstance(path, str) or not path:
        raise bad("Missing required field: path")
    if not path.startswith("/"):
        raise bad(f"Path must be absolute: {path!r}")
    parts = path.rstrip("/").split("/")[1:]
    if not parts or any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
        raise bad(f"Invalid path: {path!r}")
    return parts


def canonical(parts: list[str]) -> list[str]:
    """`Models/<catalog>/<schema>/<model>/...` with the names lower-cased as Unity Catalog stores them."""
    if parts[0] != "Models":
        raise bad(f"Only /Models/... paths are served by the sandbox workspace, not /{'/'.join(parts)}")
    return ["Models", *(p.lower() for p in parts[1:4]), *parts[4:]]


def model_file(path: object) -> tuple[str, str, list[str]]:
    """(model name, version, segments inside the version) of `/Models/<c>/<s>/<m>/<version>/<file...>`."""
    parts = segments(path)
    if len(parts) < 6 or parts[0] != "Models":
        raise bad(f"Invalid path {path!r}: expected /Models/<catalog>/<schema>/<model>/<version>/<file>")
    return full_name(".".join(parts[1:4])), version_number(parts[4]), parts[5:]


def local(parts: list[str]) -> Path:
    """The file under DATA/uc-files for canonical segments; refused if it would resolve outside."""
    target = registry.files.joinpath(*parts).resolve()
    if not target.is_relative_to(registry.files):
        raise bad("Invalid path: it leaves the files area")
    return target


def signature(method: str, rel: str, expires: int) -> str:
    key = current_app.extensions["uc_files.key"]
    return hmac.new(key, f"{method}\n{rel}\n{expires}".encode(), hashlib.sha256).hexdigest()


def presigned_url(method: str, parts: list[str]) -> str:
    rel, expires = "/".join(parts), int(time.time()) + URL_TTL
    query = urlencode({"expires": expires, "signature": signature(method, rel, expires)})
    return f"{request.host_url.rstrip('/')}{PRESIGNED}/{quote(rel)}?{query}"


# ---- the Databricks API side (token-checked) ------------------------------------------------------
@bp.post(f"{FS}/create-upload-url")
def create_upload_url():
    name, version, rest = model_file(json_body().get("path"))
    with registry.lock:
        must_own(name, "write its versions' files")
        v = registry.version(name, version)
        if v["status"] != "PENDING_REGISTRATION":
            raise bad(f"Model version '{name}/{version}' is {v['status']}: its files can no longer be written.")
    parts = ["Models", *name.split("."), version, *rest]
    local(parts)
    return jsonify({"url": presigned_url("PUT", parts), "headers": UPLOAD_HEADERS})


@bp.post(f"{FS}/create-download-url")
def create_download_url():
    path = json_body().get("path")
    name, version, rest = model_file(path)
    parts = ["Models", *name.split("."), version, *rest]
    with registry.lock:
        may_read(name)
        registry.version(name, version)
    if not local(parts).is_file():
        raise not_found(f"The file being accessed is not found: {path}")
    return jsonify({"url": presigned_url("GET", parts), "headers": []})


@bp.get(f"{FS}/directories/<path:rest>")
def list_directory(rest: str):
    parts = canonical(segments("/" + rest))
    if len(parts) >= 4:
        with registry.lock:
            may_read(".".join(parts[1:4]))
    size = integer(request.args.get("page_size"), "page_size", required=False) or PAGE_SIZE
    if not 1 <= size <= PAGE_SIZE:
        raise bad(f"page_size must be between 1 and {PAGE_SIZE}, got {size}")
    target = local(parts)
    if not target.is_dir():
        if len(parts) == 5 and version_exists(parts):
            return jsonify({"contents": []})
        raise not_found(f"The directory being accessed is not found: /{'/'.join(parts)}")
    token = request.args.get("page_token") or ""
    state = decode_token(token) if token else {"after": ""}
    after = state.get("after") if isinstance(state, dict) else None
    if not isinstance(after, str):
        raise bad(f"Invalid page_token: {token!r}")
    names = sorted(e.name for e in target.iterdir() if e.name > after)
    entries = [entry(parts, target / n) for n in names[:size]]
    more = {"next_page_token": encode_token({"after": names[size - 1]})} if len(names) > size else {}
    return jsonify({"contents": entries, **more})


def version_exists(parts: list[str]) -> bool:
    with registry.lock:
        return parts[4] in registry.versions.get(".".join(parts[1:4]), {})


def entry(parts: list[str], f: Path) -> dict:
    d = {"path": "/" + "/".join([*parts, f.name]), "name": f.name, "is_directory": f.is_dir()}
    if not d["is_directory"]:
        st = f.stat()
        d.update(file_size=st.st_size, last_modified=int(st.st_mtime * 1000))
    return d


# ---- the storage side: no token, the URL's signature is the authority -----------------------------
def signed_target(method: str, rel: str) -> Path | Response:
    expires, sig = request.args.get("expires", ""), request.args.get("signature", "")
    if not expires.isdigit() or not hmac.compare_digest(sig, signature(method, rel, int(expires))):
        return Response("AccessDenied: the signature does not match.\n", 403, mimetype="text/plain")
    if int(expires) < time.time():
        return Response("AccessDenied: the URL has expired.\n", 403, mimetype="text/plain")
    return local(segments("/" + rel))


@bp.put(f"{PRESIGNED}/<path:rel>")
def put_file(rel: str):
    target = signed_target("PUT", rel)
    if isinstance(target, Response):
        return target
    for h in UPLOAD_HEADERS:
        if request.headers.get(h["name"]) != h["value"]:
            return Response(f"AccessDenied: header {h['name']} must be {h['value']!r}.\n", 403, mimetype="text/plain")
    incoming = registry.files / ".incoming"
    incoming.mkdir(exist_ok=True)
    tmp = incoming / uuid.uuid4().hex
    tmp.write_bytes(request.get_data())
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    return Response(status=200)


@bp.get(f"{PRESIGNED}/<path:rel>")
def get_file(rel: str):
    target = signed_target("GET", rel)
    if isinstance(target, Response):
        return target
    if not target.is_file():
        return Response("NoSuchKey: the file does not exist.\n", 404, mimetype="text/plain")
    return send_file(target, mimetype="application/octet-stream", conditional=False, etag=False, max_age=0)
