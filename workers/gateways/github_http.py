"""How a request to GitHub goes out through PyGithub and how its answer comes back (workers/gateways/forge.py's
transport): the client with safe retries, one exchange with its errors translated at this edge, a conditional GET,
and the cursor of a `Link` header.

A conditional GET sends `If-None-Match` with the ETag the same URL answered before. GitHub, "Best practices for using
the REST API", § Use conditional requests: "If the response has not changed, you will receive a `304 Not Modified`
response. Making a conditional request does not count against your primary rate limit if a `304` response is
returned and the request was made while correctly authorized with an `Authorization` header." Only a 304 says
"unchanged": any error is raised as such (workers/errors.py), never read as an answer.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from github import Auth, Github, GithubException
from github.Requester import Requester
from requests import RequestException
from urllib3.util.retry import Retry

from core.config import GitHubSettings
from workers.errors import Permanent, classify
from workers.gateways import Listing

SAFE_RETRY = Retry(
    total=3,
    backoff_factor=0.5,
    status_forcelist=(502, 503, 504),
    allowed_methods=frozenset({"GET", "HEAD"}),
    raise_on_status=False,
    respect_retry_after_header=False,  # never sleep in a worker slot: Celery waits out a retry-after
)
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')
NOT_MODIFIED = 304


def github_client(cfg: GitHubSettings) -> Github:
    auth: Auth.Auth
    if cfg.app_id and cfg.installation_id:
        key = os.environ.get(cfg.app_private_key_env)
        if not key:
            raise Permanent(f"GitHub App: {cfg.app_private_key_env} is not set")
        auth = Auth.AppAuth(cfg.app_id, key).get_installation_auth(cfg.installation_id)
    else:
        token = os.environ.get(cfg.token_env)
        if not token:
            raise Permanent(f"GitHub: {cfg.token_env} is not set")
        auth = Auth.Token(token)
    return Github(
        base_url=cfg.base_url,
        auth=auth,
        retry=SAFE_RETRY,
        timeout=15,
        seconds_between_requests=cfg.seconds_between_requests,
        seconds_between_writes=cfg.seconds_between_writes,
    )


def exchange(gh: Github, verb: str, url: str, **kwargs) -> tuple[dict[str, Any], Any]:
    """(headers, JSON) of one request; every failure raised as `workers.errors` says."""
    try:
        return gh.requester.requestJsonAndCheck(verb, url, **kwargs)
    except GithubException as exc:
        message = (exc.data or {}).get("message", "") if isinstance(exc.data, dict) else ""
        raise classify(exc, f"GitHub said {exc.status} to {verb} {url}: {message}".strip()) from exc
    except (RequestException, OSError) as exc:
        raise classify(exc, f"GitHub did not answer {verb} {url}: {exc}") from exc


def listing_if_changed(gh: Github, url: str, parameters: dict[str, Any], etag: str = "") -> Listing:
    """GET `url`, sending `If-None-Match: etag` when one is given: its JSON and ETag, or `changed` False on a 304.
    (PyGithub's requestJsonAndCheck reads a 304's empty body as None and drops the status: the status is read here.)"""
    headers = {"If-None-Match": etag} if etag else None
    try:
        status, answered, body = gh.requester.requestJson("GET", url, parameters, headers)
    except (RequestException, OSError) as exc:
        raise classify(exc, f"GitHub did not answer GET {url}: {exc}") from exc
    tag = header(answered, "etag")
    if status == NOT_MODIFIED and etag:
        return Listing([], tag or etag, changed=False)
    data = _json(body)
    if status >= 400 or status == NOT_MODIFIED:  # a 304 to a request that sent no ETag answers nothing asked
        message = data.get("message", "") if isinstance(data, dict) else ""
        error = Requester.createException(status, answered, data if isinstance(data, dict) else {})
        raise classify(error, f"GitHub said {status} to GET {url}: {message}".strip()) from error
    if not isinstance(data, list):
        raise Permanent(f"GitHub answered GET {url} with {type(data).__name__}, not a list")
    return Listing(data, tag)


def _json(body: str) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def header(headers: dict[str, Any], name: str) -> str:
    """A response header, whatever its case ("" when absent)."""
    return str(next((v for k, v in headers.items() if k.lower() == name), ""))


def next_cursor(link: str) -> str:
    """The `cursor` of the `rel="next"` URL in a Link header, "" when there is no next page."""
    found = NEXT_LINK.search(link)
    if not found:
        return ""
    return (parse_qs(urlsplit(found.group(1)).query).get("cursor") or [""])[0]
