"""Conditional requests, as GitHub documents them: an `ETag` on every API answer to a GET, `304 Not Modified` to a
request whose `If-None-Match` names it, and a 304 that costs no rate limit when the request was authorized.

GitHub, "Best practices for using the REST API", § Use conditional requests
(https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests):

    "Most endpoints return an `etag` header, and many endpoints return a `last-modified` header. You can use the
    values of these headers to make conditional `GET` requests. If the response has not changed, you will receive a
    `304 Not Modified` response. Making a conditional request does not count against your primary rate limit if a
    `304` response is returned and the request was made while correctly authorized with an `Authorization` header."

and § Make requests that can be cached:

    "The endpoint returns `304` when the representation that you requested has not changed since you saved its
    `etag` or `last-modified` value; unrelated response headers, such as the date, can still differ." —
    "Use the same parameters every time you poll the same data. A different page size, page number, or filter
    produces a different response with a different `etag`."

What the stand-in does:
- a 200 answer to an API GET with a JSON body carries `ETag: W/"<digest of the body>"`: a weak validator of the
  representation, derived from it alone (the same body for the same URL is the same tag; a different page, filter or
  content is another); no `Last-Modified` (GitHub sends it on "many", not all, endpoints);
- a GET whose `If-None-Match` lists that tag (or `*`), compared weakly as RFC 9110 § 13.1.2 requires ("A recipient
  MUST use the weak comparison function when comparing entity tags for If-None-Match"), is answered `304 Not
  Modified`: no body, the same `ETag`;
- that 304 is not counted against the caller's rate limit (`X-RateLimit-Remaining` and `-Used` as they were) when
  the request carried an `Authorization` header the forge accepted; an anonymous 304 is counted, as GitHub's sentence
  says by its condition. The request counts (`GET /sandbox/requests`) count every 304 as a request, and apart
  (`not_modified`, `not_modified_by_route`, `not_modified_by_user`).
"""

from __future__ import annotations

import hashlib

from flask import Request, Response


def tag_of(body: bytes) -> str:
    """The weak entity tag of an answer's body."""
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def opaque(tag: str) -> str:
    """An entity tag without its weakness indicator: what the weak comparison compares."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def none_match(header: str, tag: str) -> bool:
    """True when `If-None-Match` (a list of tags, or `*`) names `tag` under the weak comparison."""
    listed = [t.strip() for t in header.split(",") if t.strip()]
    return "*" in listed or opaque(tag) in {opaque(t) for t in listed}


def answer_conditionally(request: Request, resp: Response) -> bool:
    """Give a GET's 200 JSON answer its ETag, and turn it into `304 Not Modified` when the request's `If-None-Match`
    names it. True when the answer is now a 304."""
    if request.method != "GET" or resp.status_code != 200 or not resp.is_json:
        return False
    tag = tag_of(resp.get_data())
    resp.headers["ETag"] = tag
    wanted = request.headers.get("If-None-Match", "")
    if not wanted or not none_match(wanted, tag):
        return False
    resp.status_code = 304
    resp.set_data(b"")
    for header in ("Content-Type", "Content-Length", "Link"):
        resp.headers.pop(header, None)
    return True
