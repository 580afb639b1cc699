"""The slash-command parser: a table of cases, and properties over arbitrary text."""

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.commands import COMMANDS, Command, CommandError, command_lines, parse_comment, parse_slack_text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/train toy", [Command("train", dataset="toy", line="/train toy")]),
        ("/train", [Command("train", line="/train")]),
        (
            "/train full --param lr=0.1",
            [Command("train", dataset="full", params={"lr": "0.1"}, line="/train full --param lr=0.1")],
        ),
        (
            "/train toy --param=a=1 --param b=x=y",
            [
                Command(
                    "train", dataset="toy", params={"a": "1", "b": "x=y"}, line="/train toy --param=a=1 --param b=x=y"
                )
            ],
        ),
        # one word: a model or a dataset, resolved by the worker, which knows the repository's models
        ("/train ato_risk", [Command("train", dataset="ato_risk", line="/train ato_risk")]),
        (
            "/train ato_risk full --param lr=0.1",
            [
                Command(
                    "train",
                    model="ato_risk",
                    dataset="full",
                    params={"lr": "0.1"},
                    line="/train ato_risk full --param lr=0.1",
                )
            ],
        ),  # fmt: skip
        ("/test", [Command("test", line="/test")]),
        ("/test unit", [Command("test", suite="unit", line="/test unit")]),
        ("/retest", [Command("retest", line="/retest")]),
        ("/cancel", [Command("cancel", line="/cancel")]),
        ("/status", [Command("status", line="/status")]),
        ("/help", [Command("help", line="/help")]),
        ("/ok-to-test", [Command("ok-to-test", line="/ok-to-test")]),
        ("/approve", [Command("approve", line="/approve")]),
        (
            "/approve churn-model@7",
            [Command("approve", model="churn-model", version="7", line="/approve churn-model@7")],
        ),
        ("/reject accuracy dropped", [Command("reject", reason="accuracy dropped", line="/reject accuracy dropped")]),
        (
            "/reject churn-model@7 too slow",
            [
                Command(
                    "reject", model="churn-model", version="7", reason="too slow", line="/reject churn-model@7 too slow"
                )
            ],
        ),
        ("/deploy staging", [Command("deploy", environment="staging", line="/deploy staging")]),
        ("/rollback prod", [Command("rollback", environment="prod", line="/rollback prod")]),
        ("/rollback prod 7", [Command("rollback", environment="prod", version="7", line="/rollback prod 7")]),
        (
            "/rollback prod churn-model@7",
            [
                Command(
                    "rollback",
                    environment="prod",
                    model="churn-model",
                    version="7",
                    line="/rollback prod churn-model@7",
                )
            ],
        ),
        ("  /status  ", [Command("status", line="/status")]),
    ],
)
def test_valid_commands(text, expected):
    assert parse_comment(text) == expected


def test_a_task_message_reads_back_as_the_command_the_receiver_parsed():
    """The receiver enqueues `as_kwargs` (handlers/github.py adds the comment's time); a worker reads it back."""
    parsed = parse_comment("/train full --param lr=0.1")[0]
    assert isinstance(parsed, Command)
    sent = json.loads(json.dumps(parsed.as_kwargs() | {"commented_at": "2026-11-28T12:00:00Z", "newer": 1}))
    assert Command.from_kwargs(sent) == replace(parsed, commented_at="2026-11-28T12:00:00Z")


@pytest.mark.parametrize(
    "text, name, message",
    [
        ("/trian toy", "trian", "unknown command `/trian`"),
        ("/train card_fraud toy full", "train", "a model and a dataset at most"),
        ("/train toy --param", "train", "needs key=value"),
        ("/train toy --param lr", "train", "is not key=value"),
        ("/train toy --param lr=", "train", "needs a value"),
        ("/train toy --param a=1 --param a=2", "train", "given twice"),
        ("/train toy --param n_estimators=5,random_state=7", "train", "cannot contain `,`"),  # smuggling
        ("/train toy --force", "train", "unknown option `--force`"),
        ("/train 'toy", "train", "cannot read the arguments"),
        ("/train ../etc", "train", "is not a model or dataset name"),
        ("/status now", "status", "takes no arguments"),
        ("/test unit integration", "test", "at most one suite"),
        ("/approve churn-model", "approve", "model@version"),
        ("/approve churn-model@0", "approve", "model@version"),
        ("/reject", "reject", "say why"),
        ("/reject churn-model@7", "reject", "say why"),
        ("/deploy", "deploy", "name one stage"),
        ("/deploy staging prod", "deploy", "name one stage"),
        ("/rollback", "rollback", "name the stage"),
        ("/rollback prod x y z", "rollback", "name the stage"),
        ("/rollback prod churn-model@0", "rollback", "is not a version number"),
    ],
)
def test_malformed_commands_say_why(text, name, message):
    [error] = parse_comment(text)
    assert isinstance(error, CommandError)
    assert error.name == name and message in error.message


@pytest.mark.parametrize(
    "text, usage",
    [
        ("/deploy", "/deploy <stage> [name@version]"),
        ("/rollback", "/rollback prod [version]"),
        ("/rollback prod x y z", "/rollback prod [version]"),
    ],
)
def test_error_for_a_known_command_carries_its_usage(text, usage):
    [error] = parse_comment(text)
    assert error.usage == COMMANDS[error.name].usage == usage


def test_several_commands_in_one_comment_are_each_honoured_in_order():
    text = "Thanks!\n/train toy\nand then\n/test unit\n/status"
    assert [c.name for c in parse_comment(text)] == ["train", "test", "status"]


def test_code_blocks_quotes_and_paths_are_not_commands():
    text = "\n".join(
        [
            "> /train full",  # quoted reply
            "```",
            "/train full",  # fenced code
            "```",
            "~~~sh",
            "/cancel",
            "~~~",
            "    /deploy prod",  # indented code
            "/usr/bin/python is old",  # a path, not a command
            "/ not a command",
            "see /train in the docs",  # not at the start of the line
            "/status",
        ]
    )
    assert [c.name for c in parse_comment(text)] == ["status"]


def test_an_unclosed_fence_hides_the_rest():
    assert parse_comment("```\n/train toy") == []


def test_slack_text_maps_to_the_same_commands():
    assert parse_slack_text("approve churn-model 7") == parse_comment("/approve churn-model@7")[0]
    assert parse_slack_text("reject churn-model 7 too slow").reason == "too slow"
    assert parse_slack_text("rollback prod churn-model 7") == parse_comment("/rollback prod churn-model@7")[0]
    assert isinstance(parse_slack_text(""), CommandError)
    assert isinstance(parse_slack_text("launch rockets"), CommandError)


@given(st.text(max_size=300))
def test_any_text_parses_without_crashing_into_commands_or_errors(text):
    for item in parse_comment(text):
        assert isinstance(item, (Command, CommandError))
        assert item.line.startswith("/")


@given(
    st.lists(
        st.sampled_from(["/train toy", "/test", "/status", "/cancel", "/help", "/retest"]), min_size=1, max_size=8
    ),
    # a quote ends at a blank line: the next line would be its lazy continuation (CommonMark), quoted too
    st.lists(st.sampled_from(["", "hello", "> /deploy prod\n", "text with /train inside"]), min_size=0, max_size=8),
)
def test_commands_survive_interleaved_prose(commands, prose):
    lines = []
    for i, cmd in enumerate(commands):
        lines.append(prose[i % len(prose)] if prose else "")
        lines.append(cmd)
    parsed = parse_comment("\n".join(lines))
    assert [c.line for c in parsed] == commands


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9.=_-]{1,20}", fullmatch=True),
        max_size=5,
    )
)
def test_params_round_trip(params):
    text = "/train toy " + " ".join(f"--param {k}={v}" for k, v in params.items())
    [cmd] = parse_comment(text)
    assert isinstance(cmd, Command) and cmd.params == params


def test_command_lines_ignores_windows_line_endings():
    assert command_lines("hi\r\n/status\r\n") == ["/status"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/run unit-tests", Command("run", workflow="unit-tests", line="/run unit-tests")),
        (
            "/run fit --param lr=0.1",
            Command("run", workflow="fit", params={"lr": "0.1"}, line="/run fit --param lr=0.1"),
        ),
        ("/run nightly_eval.v2", Command("run", workflow="nightly_eval.v2", line="/run nightly_eval.v2")),
        ("/run", "name the workflow: `/run <workflow>`"),
        ("/run --param lr=1", "name the workflow: `/run <workflow>`"),
        ("/run fit full", "`/run` takes one workflow and `--param key=value` only, got `full` too"),
        ("/run ../fit", "`../fit` is not a workflow name"),
        ("/run fit --param lr", "`lr` is not key=value"),
        ("/run fit --param a=1,b=2", "a value cannot contain `,`"),
        ("/run fit --dataset full", "unknown option `--dataset`"),
    ],
)
def test_run_names_one_workflow_and_its_parameters(text, expected):
    [parsed] = parse_comment(text)
    if isinstance(expected, Command):
        assert parsed == expected
    else:
        assert isinstance(parsed, CommandError) and expected in parsed.message, parsed
        assert parsed.usage == COMMANDS["run"].usage


def test_a_run_command_reaches_the_worker_with_its_workflow():
    parsed = parse_comment("/run fit --param lr=0.1")[0]
    assert isinstance(parsed, Command)
    assert Command.from_kwargs(json.loads(json.dumps(parsed.as_kwargs()))) == parsed
