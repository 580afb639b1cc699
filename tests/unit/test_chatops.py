"""PR commands on the shared fakes: what the commenter sees (reply or report, statuses, runs)."""

import pytest
from markdown_it import MarkdownIt

from core.commands import COMMANDS, Command
from tests.fakes import pull, world
from workers.core.state import State
from workers.pr import chatops
from workers.release import slack_commands

REPO, PR, COMMENT = "acme/churn-model", 7, 555


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR)
    w.forge.roles.update(alice="write", bob="write", rita="read", mo="maintain")
    return w


def command(w, user, name, index=0, **args):
    ctx = chatops.command_context(w.deps, REPO, PR, COMMENT, user, "d-1", index)
    chatops.run_command(ctx, Command(name, line=f"/{name}", **args))
    return w.forge.comment("reply", f"{COMMENT}-{index}")


def test_train_starts_a_run_and_announces_it(w):
    assert command(w, "alice", "train") is None  # the report says it; no reply needed
    [status] = w.forge.statuses
    assert (status["context"], status["state"], status["description"]) == (
        "mlops-bot/train",
        "pending",
        "train is running",
    )
    assert "`train` — PENDING" in w.forge.comment("report", "train")
    [run_id] = w.workspace.runs
    assert w.workspace.parameters[run_id]["dataset"] == "toy"
    assert w.scheduler.follows == [("dev", run_id, 0)]


def test_a_reader_is_refused_with_the_reason(w):
    reply = command(w, "rita", "train")
    assert reply == "@rita `/train` needs write permission on acme/churn-model; you have read."
    assert not w.workspace.runs and not w.forge.statuses and w.forge.comment("report", "train") is None


def test_an_unknown_dataset_is_refused_with_the_usage(w):
    reply = command(w, "alice", "train", dataset="huge")
    assert reply.startswith("@alice unknown dataset `huge`; choose one of toy, full.")
    assert "Usage: `/train [model] [toy|full]" in reply


def test_a_permanent_databricks_refusal_is_told_on_the_pr(w):
    w.workspace.refuse_run_now = "INVALID_PARAMETER_VALUE: no such cluster"
    reply = command(w, "alice", "test")
    assert reply.startswith("@alice Databricks (dev) refused to start job")


def test_a_fork_needs_ok_to_test_for_its_head(w):
    w.forge.pulls[PR] = pull(PR, fork=True)
    w.deps.state.note_head(REPO, PR, "a" * 40, "2026-11-28T11:00:00Z")  # the PR's `opened` (await_ok_to_test)
    assert "must comment `/ok-to-test` for commit `aaaaaaa` first" in command(w, "alice", "test")
    reply = command(w, "alice", "ok-to-test", index=1, commented_at="2026-11-28T12:00:00Z")
    assert reply == "@alice OK to test commit `aaaaaaa` from someone/churn-model: started `test`."
    [run_id] = w.workspace.runs
    assert w.workspace.jobs[w.workspace.runs[run_id].job_id]["name"].endswith("/pull/7/test")
    command(w, "alice", "test", index=2)
    assert len(w.workspace.runs) == 2  # granted for this head: runs now


def test_status_and_cancel(w):
    command(w, "alice", "train")
    [run_id] = w.workspace.runs
    assert "| `train` | " in command(w, "rita", "status", index=1)
    assert command(w, "alice", "cancel", index=2) == f"@alice cancelled 1 run(s): `train` {run_id}."
    assert w.workspace.cancelled == [run_id]


def test_help_lists_only_what_the_commenter_may_use(w):
    reply = command(w, "rita", "help")
    assert "`/status`" in reply and "`/train" not in reply


def test_help_is_a_table_github_reads_with_one_row_of_two_cells_per_command(w):
    """`/train [toy|full]`'s pipe is escaped: unescaped, GitHub splits the cell on it, even inside code."""
    reply = command(w, "mo", "help")
    tokens = MarkdownIt("commonmark").enable("table").parse(reply)
    rows: list[list[str]] = []
    for i, token in enumerate(tokens):
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            rows[-1].append(token.content)
    assert [len(r) for r in rows] == [2] * (len(COMMANDS) + 1)  # the header, and every command: maintain may run all
    assert rows[0] == ["Command", "What it does"]
    assert [r[0] for r in rows[1:]] == [f"`{spec.usage}`" for spec in COMMANDS.values()]
    assert [r[1].split(" — ")[0] for r in rows[1:]] == [spec.help for spec in COMMANDS.values()]
    runs = {r[0].split()[0].strip("`"): r[1].partition(" — ")[2] for r in rows[1:]}
    assert {name: said for name, said in runs.items() if said} == {
        "/train": "workflow `train`",
        "/test": "workflow `test`",
        "/run": "workflows `test`, `train`",  # validate and deploy run only in the release train
        "/deploy": "workflow `deploy`",
    }


def test_retest_with_nothing_failed(w):
    assert command(w, "alice", "retest") == "@alice nothing failed on this pull request: nothing to re-run."


def test_a_malformed_command_is_answered_with_the_usage(w):
    ctx = chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", "d-1", 0)
    chatops.answer_malformed(ctx, "/train --param", "missing key=value", "/train [toy|full]")
    assert (
        w.forge.comment("reply", f"{COMMENT}-0")
        == "@alice I could not run `/train --param`: missing key=value\n\nUsage: `/train [toy|full]`"
    )


def test_the_same_comment_delivered_again_under_a_new_delivery_id_starts_nothing_twice(w):
    for delivery in ("d-1", "d-redelivered"):  # GitHub's "Redeliver", or a replay of a captured request
        ctx = chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", delivery, 0)
        chatops.run_command(ctx, Command("train", line="/train"))
    assert len(w.workspace.runs) == 1


def test_ok_to_test_covers_only_a_head_pushed_before_the_comment(w):
    """A maintainer reviews the head, comments; the author pushes again before the bot hears the comment."""
    w.forge.pulls[PR] = pull(PR, fork=True, sha="b" * 40)
    w.deps.state.note_head(REPO, PR, "b" * 40, "2026-11-28T12:00:05Z")  # GitHub's updated_at on that push
    ctx = chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", "d-1", 0)
    chatops.run_command(ctx, Command("ok-to-test", line="/ok-to-test", commented_at="2026-11-28T12:00:00Z"))
    reply = w.forge.comment("reply", f"{COMMENT}-0")
    assert "head moved to `bbbbbbb` after your comment" in reply and not w.workspace.runs
    ctx = chatops.command_context(w.deps, REPO, PR, COMMENT + 1, "alice", "d-2", 0)
    chatops.run_command(ctx, Command("ok-to-test", line="/ok-to-test", commented_at="2026-11-28T12:01:00Z"))
    assert len(w.workspace.runs) == 1  # said again after looking at it: granted


# --- Slack's `/mlops`: the table's commands with a Slack form ----------------------------------------------------------
SLACK_USAGE = (
    "Usage: `/mlops approve <model> <version>`, `/mlops reject <model> <version> <reason>` "
    "or `/mlops rollback prod <model> [version]`"
)


@pytest.mark.parametrize(
    "command, error, answer",
    [
        (None, "unknown command `/launch`; try `/help`", "unknown command `/launch`; try `/help`\n" + SLACK_USAGE),
        (Command("status"), "", SLACK_USAGE),  # a PR command Slack does not take
        (Command("approve"), "", "Name the model and version. " + SLACK_USAGE),
        (Command("reject", model="churn-model", version="7", reason="x"), "", "is not mapped"),
        (Command("rollback", environment="prod", model="churn-model"), "", "is not mapped"),
    ],
)
def test_slack_commands_reach_their_service_or_are_answered_with_the_usage(w, command, error, answer):
    slack_commands.run_slash_command(w.deps, "U0NOBODY", "https://hooks/r", command, error)
    [response] = w.slack.responses
    assert answer in response["text"]
