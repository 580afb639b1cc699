"""The bot's one comment per (kind, key) on a PR, on the shared fakes and the real `State`: GitHub's listing of a PR's
comments is read once, a new comment is then posted without one, and a post whose answer was lost is not made twice."""

import pytest

from core import keys
from tests.fakes import FakeForge
from workers.core import sticky
from workers.core.state import State
from workers.errors import Permanent, Transient

REPO, PR = "acme/churn-model", 7
NO_LISTING = Permanent("the PR's comments were listed")


@pytest.fixture
def state(redis_client):
    return State(redis_client)


def posted(forge: FakeForge, kind: str, key: str) -> list[int]:
    return [cid for cid, c in forge.comments.items() if c["body"].startswith(f"<!-- mlops-bot:{kind} key={key} -->")]


def test_the_prs_comments_are_listed_once_then_a_new_comment_is_posted_without_a_listing(state):
    forge = FakeForge()
    report = sticky.upsert(forge, state, REPO, PR, "report", "test", "running")  # the PR's first: listed
    forge.failures["marked_comments"] = NO_LISTING
    reply = sticky.upsert(forge, state, REPO, PR, "reply", "555-0", "@alice refused")
    assert sticky.upsert(forge, state, REPO, PR, "report", "test", "SUCCESS") == report  # edited in place
    assert (posted(forge, "report", "test"), posted(forge, "reply", "555-0")) == ([report], [reply])
    assert forge.comment("report", "test") == "SUCCESS"


def test_a_listing_finds_the_comments_the_bot_made_before_it_remembered_any(state):
    forge = FakeForge()
    earlier = forge.upsert_comment(REPO, PR, "report", "train", "from before")  # e.g. the ledger expired
    forge.comments[1] = {"pr": PR, "body": "<!-- mlops-bot:report key=test -->\npasted", "user": "mallory"}
    assert sticky.upsert(forge, state, REPO, PR, "report", "train", "now") == earlier
    mine = sticky.upsert(forge, state, REPO, PR, "report", "test", "the bot's own")  # not mallory's comment
    assert mine != 1 and forge.comments[1]["body"].endswith("pasted")


def test_a_post_whose_answer_was_lost_is_found_not_made_twice(state):
    forge = FakeForge()
    sticky.upsert(forge, state, REPO, PR, "report", "test", "running")  # the PR is listed
    real = forge.upsert_comment

    def lost(*args, **kwargs):  # GitHub made the comment; the answer never came back
        real(*args, **kwargs)
        raise Transient("connection reset")

    forge.upsert_comment = lost
    with pytest.raises(Transient):
        sticky.upsert(forge, state, REPO, PR, "reply", "555-0", "@alice done")
    forge.upsert_comment = real
    cid = sticky.upsert(forge, state, REPO, PR, "reply", "555-0", "@alice done")  # the task, retried
    assert posted(forge, "reply", "555-0") == [cid]


def test_a_ledger_gone_from_redis_lists_again(state, redis_client):
    forge = FakeForge()
    first = sticky.upsert(forge, state, REPO, PR, "report", "train", "one")
    redis_client.delete(keys.pr_comments(REPO, PR))  # expired (PR_TTL) or lost: nothing is taken for granted
    assert sticky.upsert(forge, state, REPO, PR, "report", "train", "two") == first
    assert posted(forge, "report", "train") == [first] and forge.comment("report", "train") == "two"


def test_a_comment_someone_deleted_is_posted_again(state):
    forge = FakeForge()
    first = sticky.upsert(forge, state, REPO, PR, "report", "train", "one")
    del forge.comments[first]
    forge.failures["marked_comments"] = NO_LISTING
    again = sticky.upsert(forge, state, REPO, PR, "report", "train", "two")
    assert again != first and posted(forge, "report", "train") == [again]


def test_the_ledger_expires_whole_and_every_write_renews_it(state, redis_client):
    forge = FakeForge()
    sticky.upsert(forge, state, REPO, PR, "report", "train", "one")
    redis_client.expire(keys.pr_comments(REPO, PR), 60)
    sticky.upsert(forge, state, REPO, PR, "reply", "1-0", "two")
    assert redis_client.ttl(keys.pr_comments(REPO, PR)) > keys.PR_TTL - 60
