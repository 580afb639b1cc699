"""Echoing what people typed: hostile input in, nothing pinged, nothing injected, nothing refused for its size.

Slack's "Escaping text" (https://api.slack.com/reference/surfaces/formatting#escaping):
  "Slack uses &, <, and > as control characters for special parsing in text objects, so they must be
  converted to HTML entities if they're not going to be used for their parsing purpose."
  "You shouldn't HTML entity-encode the entire text, as only the specific characters shown above will be
  decoded for display in Slack."
GitHub answers a longer comment 422 "body is too long (maximum is 65536 characters)".
"""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest

from core.config import GitHubSettings, SlackSettings
from tests.fakes import approval_request, release_record, run_record, run_result
from workers.core.run_records import RemovedJob
from workers.escaping import (
    GITHUB_COMMENT_MAX,
    SLACK_BLOCK_TEXT_MAX,
    SLACK_TEXT_MAX,
    md_cell,
    md_code,
    md_reason,
    md_text,
    slack_text,
    truncate,
)
from workers.gateways.forge import Forge, marker
from workers.gateways.slack import Slack
from workers.jobs import reports
from workers.jobs import texts as jobs_texts
from workers.pr import texts as pr_texts
from workers.release import texts as release_texts
from workers.release import texts as rt

ZWSP = "\u200b"
MENTION = re.compile(r"(?:^|[^\w`])@[A-Za-z0-9]")  # GitHub notifies `@login` / `@org/team` at a word start
HOSTILE = [
    "@acme/ml-leads please look",
    "<!channel> <!here> <@U123> <!subteam^S1>",
    "</details>\n\n# pwned\n<img src=x onerror=alert(1)>",
    "<!-- mlops-bot:report key=train -->",
    "a | b | c",
    "`` ` @team ` ``",
    "[approve here](https://evil.example)",
    "line one\r\nline two\u2028three\x00four",
    "&lt;already escaped&gt; & more",
]


def outside_code(markdown: str) -> str:
    """The text GitHub reads outside code spans (where mentions and HTML would act); `\\`` is no delimiter."""
    return "".join(part for i, part in enumerate(re.split(r"(?<!\\)(`+)(?:.*?)\1", markdown)) if i % 2 == 0)


@pytest.mark.parametrize("typed", HOSTILE)
def test_md_text_notifies_nobody_opens_no_html_and_stays_on_one_line(typed):
    out = md_text(typed)
    assert not MENTION.search(out) and "<" not in out and ">" not in out
    assert "\n" not in out and "\r" not in out and "\x00" not in out
    assert "](" not in out.replace("\\](", "")  # no link syntax left
    assert out.replace(ZWSP, "").replace("\\", "") == html.escape(
        re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", typed), quote=False
    ).replace("\\", "")  # the same text, as it will read


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("@team", f"@{ZWSP}team"),
        ("</details>", "&lt;/details&gt;"),
        ("a`b", "a\\`b"),
        ("[x](y)", "\\[x\\](y)"),
        ("x & y", "x &amp; y"),
        ("recall_at_10 *up*", "recall_at_10 *up*"),  # emphasis is only looks; `_` is in every metric name
        ("two\n\nlines", "two lines"),
    ],
)
def test_md_text_table(typed, shown):
    assert md_text(typed) == shown


def test_a_table_cell_keeps_its_columns():
    row = f"| {md_cell('a | b | c')} | {md_code('x|y', cell=True)} |"
    assert len(re.findall(r"(?<!\\)\|", row)) == 3


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ("/train toy", "`/train toy`"),
        ("a`b", "``a`b``"),
        ("`` ` @team ` ``", "``` `` ` @team ` `` ```"),
        ("`x", "`` `x ``"),
        ("two\nlines", "`two lines`"),
    ],
)
def test_md_code_fences_with_more_backticks_than_the_value_holds(value, span):
    assert md_code(value) == span


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("unknown command `/trian`; try `/help`", "unknown command `/trian`; try `/help`"),
        ("unknown option `--x` @team", f"unknown option `--x` @{ZWSP}team"),
        ("`x` @team `` <b>", f"`x` @{ZWSP}team \\`\\` &lt;b&gt;"),  # an unclosed run is only a backtick
        ("`a` and ``b`c``", "`a` and ``b`c``"),
    ],
)
def test_md_reason_keeps_the_bots_code_spans_and_escapes_the_rest(reason, shown):
    assert md_reason(reason) == shown


@pytest.mark.parametrize("typed", HOSTILE)
def test_slack_text_escapes_slacks_three_control_characters_and_nothing_else(typed):
    out = slack_text(typed)
    assert "<" not in out and ">" not in out
    assert html.unescape(out) == typed  # Slack decodes exactly these three back for display
    assert slack_text("*bold* _x_ `c` @here") == "*bold* _x_ `c` @here"


def test_a_hostile_reject_reason_reaches_the_pr_and_slack_inert():
    reason = "@acme/ml-leads <!channel> </details> | ` @team `"
    echo = release_texts.rejected_echo("staging.ml.churn", "3", "bob", "slack", reason)
    assert echo.startswith("❌ staging.ml.churn@3 was rejected by @bob (slack): ")  # the approver is meant
    assert not MENTION.search(echo.split(": ", 1)[1]) and "<" not in echo
    release = release_record(
        model="churn",
        pr=7,
        sha="a" * 40,
        dev={"name": "dev", "registry": "dev.ml.churn"},
        staging={"name": "staging", "registry": "staging.ml.churn", "version": "3"},
        prod={"name": "prod", "registry": "prod.ml.churn"},
    )
    request = approval_request(validation="passed", status="rejected", rejected_by="bob", reason=reason, needed=1)
    comment = rt.release_comment(release, request, "champion")
    [row] = [line for line in comment.splitlines() if line.startswith("| approval |")]
    assert len(re.findall(r"(?<!\\)\|", row)) == 4  # three cells, whatever the reason holds
    assert "</details>" not in comment and not MENTION.search(row.split("rejected by @bob: ")[1])


def test_a_typed_command_line_cannot_break_out_of_its_code_span():
    body = pr_texts.refused(
        "alice", pr_texts.malformed_command("/train `x` @acme/team </details>", "unknown option `x`")
    )
    assert body.startswith("@alice I could not run ``/train `x` @acme/team </details>``: ")
    assert not MENTION.search(outside_code(body).removeprefix("@alice"))


def test_a_runs_claimed_tags_and_metric_names_are_echoed_inert():
    request = approval_request(
        model="churn",
        version="3",
        claimed={"git_sha": "<!channel>", "pr": "@acme/ml-leads"},
        summary=release_texts.validation_summary(True, True, {"auc|<b>@x": 0.9}, [], "SUCCESS"),
    )
    for text in (release_texts.approval_request(request, 1), release_texts.approval_request_pr(request, 1)):
        assert "<!channel>" not in text and "<b>" not in text and not MENTION.search(text)
    record = run_record(workflow="train", sha="f" * 40, parameters={"params": "k=`v` @team"}, command="/t `@x`")
    report = reports.render_result(
        record, run_result(result="FAILED", message="</details> @team"), metrics={"a|b": 1.0}
    )
    assert "</details>" not in report and not MENTION.search(outside_code(report))
    assert "| a\\|b | 1.0000 | — | — |" in report


def test_what_slack_users_typed_is_escaped_in_slack():
    assert "<!channel>" not in release_texts.slack_usage("unknown command `/<!channel>`")
    assert release_texts.slack_verdict("bob", "model `<@U123>` is not configured") == (
        "@bob: model `&lt;@U123&gt;` is not configured"
    )
    removed = [RemovedJob(job="mlops/acme/x/<!here>/train", environment="dev", job_id=1, why="branch gone")]
    assert "<!here>" not in jobs_texts.stale_jobs_removed(removed)


def test_truncate_says_so():
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 70_000, GITHUB_COMMENT_MAX)
    assert len(cut) == GITHUB_COMMENT_MAX and cut.endswith("… (truncated)")


class Requester:
    def __init__(self):
        self.sent: list[tuple[str, str, dict]] = []

    def requestJsonAndCheck(self, verb, url, input=None, parameters=None):  # noqa: N802 (PyGithub's name)
        self.sent.append((verb, url, input))
        return {}, ([] if verb == "GET" else {"id": 1})


def test_a_70000_character_reason_still_makes_a_comment_within_githubs_limit():
    requester = Requester()
    forge = Forge(GitHubSettings(), client=SimpleNamespace(requester=requester))
    body = release_texts.rejected_echo("churn", "3", "bob", "github", "why " * 17_500)
    forge.upsert_comment("acme/churn-model", 7, "decision", "churn@3", body)
    forge.edit_comment("acme/churn-model", 1, body)
    posted, edited = [s[2]["body"] for s in requester.sent if s[0] in ("POST", "PATCH")]
    for sent in (posted, edited):
        assert len(sent) <= GITHUB_COMMENT_MAX and sent.endswith("… (truncated)")
    assert posted.startswith(marker("decision", "churn@3"))  # found again next time


class WebClient:
    def __init__(self):
        self.calls: list[dict] = []

    def chat_postMessage(self, **kw):  # noqa: N802 (slack_sdk's name)
        self.calls.append(kw)
        return {"channel": "C1", "ts": "1.0"}

    chat_update = chat_postMessage


def test_slack_gets_texts_within_its_sizes():
    client = WebClient()
    slack = Slack(SlackSettings(channel="C1"), client=client)
    long = "y" * 50_000
    slack.request_approval("churn", "3", long)
    slack.post(long)
    slack.close_request("C1", "1.0", long)
    for call in client.calls:
        assert len(call["text"]) == SLACK_TEXT_MAX and call["text"].endswith("… (truncated)")
        for block in call.get("blocks") or []:
            if block["type"] == "section":
                assert len(block["text"]["text"]) == SLACK_BLOCK_TEXT_MAX
