"""Who wrote a merged pull request, for the four-eyes rule (`policy.approval_refusal`). Pure: no I/O.

At merge the bot lists the PR's commits (GitHub's PR commits listing, every page) and writes down, in its own
records (the release, then the approval request), every identity behind them: the opener, each commit's author and
committer, and each `Co-authored-by:` trailer. An approver is none of them.

How an identity names a person:
  - a GitHub login, when GitHub linked the commit to an account ("GitHub uses the email address in the commit
    header to link the commit to a GitHub user") — the opener always has one;
  - otherwise (the email is on no account, and the git name is whatever the committer typed) by its email: GitHub's
    no-reply form `ID+login@users.noreply.<host>` (or the older `login@users.noreply.<host>`) names `login`, and an
    email config.toml gives a login in `[databricks.users]` (login -> Databricks user name, an email) names that login;
  - a git name equal to the approver's login also names the approver (it can only refuse, never allow).
A commit author or committer that names nobody this way is *unknown*: anyone may have written it, so the version needs
what a version without proven lineage needs — the model's listed approvers, two at least. The same when the bot did not
list the commits at merge, or GitHub's listing stopped at its 250 commits. An unmatched trailer is no such reason: it
is one more claim in a commit whose author is already accounted for.

Bots: an account of `type` Bot, a login ending `[bot]`, or the bot's own login never approves. GitHub's own committer
(`web-flow`, "GitHub <noreply@github.com>", on commits made in its web pages) is nobody. When no human is behind a pull
request at all — a bot opened it and bots wrote every commit, naming no human co-author — the human who merged it is the
one who chose to ship the bots' code, and stands in as its author: another person approves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.config import Settings
from workers.core.records import Author, Authorship
from workers.escaping import md_text
from workers.gateways import GitIdentity, PullCommit

PULL_COMMITS_MAX = 250  # pulls/list-commits: "Lists a maximum of 250 commits for a pull request"
GITHUB_LOGINS = frozenset({"web-flow"})  # the committer of commits made on GitHub's web pages
GITHUB_EMAILS = frozenset({"noreply@github.com"})
NOREPLY = re.compile(r"(?:\d+\+)?([a-z0-9][a-z0-9-]*(?:\[bot\])?)@users\.noreply\.[a-z0-9.-]+", re.IGNORECASE)
TRAILER = re.compile(r"co-authored-by:\s*(.*?)\s*<([^<>]*)>\s*", re.IGNORECASE)
ROLES = {  # what an identity did, as the four-eyes refusal says it
    "opened": "opened the pull request",
    "authored": "wrote commits of the pull request",
    "committed": "committed to the pull request",
    "co-authored": "is named co-author (`Co-authored-by:`) of commits of the pull request",
}


# --- at merge: the listing as the bot's record ------------------------------------------------------------
def co_authors(message: str) -> list[tuple[str, str]]:
    """(name, email) of each `Co-authored-by:` trailer: the lines of the message's last paragraph (git's trailers)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", message.strip()) if p.strip()]
    last = paragraphs[-1] if len(paragraphs) > 1 else ""
    found = (TRAILER.fullmatch(line.strip()) for line in last.splitlines())
    return [(m.group(1), m.group(2).strip()) for m in found if m]


def _author(role: str, who: GitIdentity, sha: str) -> Author | None:
    if who.login.lower() in GITHUB_LOGINS or (not who.login and who.email.lower() in GITHUB_EMAILS):
        return None  # GitHub itself committed it (a change made in its web pages)
    bot = who.kind == "Bot" or who.login.lower().endswith("[bot]")
    return Author(role, who.login, who.email, who.name, bot, sha)


def authorship_of(opener: str, commits: Iterable[PullCommit]) -> Authorship:
    """The record of who is behind a pull request: its opener, its commits' authors, committers and co-authors."""
    found: list[Author] = [Author("opened", opener, bot=opener.lower().endswith("[bot]"))]
    count = 0
    for c in commits:
        count += 1
        found += [a for a in (_author("authored", c.author, c.sha), _author("committed", c.committer, c.sha)) if a]
        for name, email in co_authors(c.message):
            login = noreply_login(email)
            found.append(Author("co-authored", "", email, name, login.endswith("[bot]"), c.sha))
    unique: dict[tuple, Author] = {}
    for a in found:
        unique.setdefault((a.role, a.login.lower(), a.email.lower(), a.name), a)
    return Authorship(tuple(unique.values()), count)


# --- at approval: who they are ----------------------------------------------------------------------------
def noreply_login(email: str) -> str:
    found = NOREPLY.fullmatch(email.strip())
    return found.group(1).lower() if found else ""


def logins_of(author: Author, settings: Settings) -> set[str]:
    """The logins (lowercase) an identity names for sure: its GitHub account, else its no-reply or configured email."""
    if author.login:
        return {author.login.lower()}
    email = author.email.strip().lower()
    found = {noreply_login(email)} - {""}
    found |= {login.lower() for login, user in settings.databricks.users.items() if email and user.lower() == email}
    return found


def is_bot(login: str, settings: Settings) -> bool:
    own = settings.bot.login.lower()
    return login.lower().endswith("[bot]") or login.lower() in (own, f"{own}[bot]")


def roles_of(authorship: Authorship, approver: str, settings: Settings, merged_by: str = "") -> list[str]:
    """What `approver` did to the pull request, as the refusal says it (none: they may approve)."""
    me = approver.lower()
    roles = [
        ROLES[a.role]
        for a in authorship.authors
        if me in logins_of(a, settings) or (not a.login and a.name.strip().lower() == me)
    ]
    if merged_by.lower() == me and not humans(authorship, settings):
        roles.append("merged the pull request, which only bots wrote")
    return list(dict.fromkeys(roles))


def humans(authorship: Authorship, settings: Settings) -> list[Author]:
    """The identities behind the pull request that are not bots (an unknown one may be anybody: it counts)."""
    return [a for a in authorship.authors if not a.bot and not any(is_bot(x, settings) for x in logins_of(a, settings))]


def unknown(authorship: Authorship | None, settings: Settings) -> str:
    """Why the bot cannot tell who wrote the pull request ("" when it can): the identities it cannot name, the
    listing's limit, or no listing at all."""
    if authorship is None:
        return "the bot did not list who wrote its pull request when it was merged"
    if authorship.commits >= PULL_COMMITS_MAX:
        return f"GitHub lists {PULL_COMMITS_MAX} commits of a pull request at most, and it has that many"
    nobody = [
        f"{md_text(a.name or '?')} ({md_text(a.email or 'no email')})"  # anyone's text: shown, escaped
        for a in authorship.authors
        if a.role in ("authored", "committed") and not logins_of(a, settings)
    ]
    if nobody:
        shown = ", ".join(dict.fromkeys(nobody))
        return f"commits of its pull request were made by {shown}, which GitHub links to no account"
    return ""
