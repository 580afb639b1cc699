"""Properties of the pure parsers, on inputs hypothesis makes up: bad input never crashes the bot.

Comments and Slack texts become commands or errors with a usage; branch names survive the job name;
tags stay within the documented limits; gates are read or refused; config is Settings or ConfigError.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from mlflow.utils.validation import MAX_MODEL_REGISTRY_TAG_KEY_LENGTH, MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH

from core.commands import (
    COMMANDS,
    MAX_COMMANDS,
    Command,
    CommandError,
    command_lines,
    parse_command,
    parse_comment,
    parse_slack_text,
)
from core.compute import MAX_TAGS
from core.config import ConfigError, Settings, parse_config
from core.stages import Model
from core.vocabulary import GATE, GATE_HELP, job_name, parse_any_job_name, parse_job_name
from tests.conftest import ROOT
from tests.fakes import pull, world
from tests.unit.test_approvals import PR, PROD, STAGING, TRAIN_RUN, validate
from tests.unit.test_approvals import REPO as REPO_NAME
from workers.core.gates import GateResult, evaluate
from workers.core.state import State
from workers.jobs.spec import MAX_TAG_VALUE, job_settings, job_tags, tag_value
from workers.release import approvals, lineage

# no example database: nothing is written into the working tree, every run starts fresh
FAST = settings(max_examples=200, deadline=None, database=None)
SOME = settings(max_examples=60, deadline=None, database=None)

# --- comments and Slack texts -------------------------------------------------------------------
NAMES = sorted(COMMANDS)
ARG = st.one_of(
    st.sampled_from(["toy", "full", "--param", "lr=0.1", "--param=a=b", "prod", "churn@7", "7", "'", '"', "\\", "-x"]),
    st.text(max_size=12),
)
COMMAND_LINE = st.builds(
    lambda name, args, pad: pad + "/" + name + " " + " ".join(args),
    st.one_of(st.sampled_from(NAMES), st.from_regex(r"[a-z][a-z-]{0,8}", fullmatch=True)),
    st.lists(ARG, max_size=5),
    st.sampled_from(["", " ", "  ", "   "]),
)
LINE = st.one_of(
    COMMAND_LINE,
    st.text(max_size=40),
    st.sampled_from(["```", "~~~", "````", "```python", "    /train full", "\t/train", "> /train full", ""]),
)
COMMENT = st.one_of(
    st.text(max_size=300),
    st.builds(lambda lines, sep: sep.join(lines), st.lists(LINE, max_size=25), st.sampled_from(["\n", "\r\n"])),
)


def _well_formed(out: list) -> None:
    assert isinstance(out, list)
    for item in out:
        assert isinstance(item, Command | CommandError)
        if isinstance(item, CommandError):
            assert isinstance(item.message, str) and item.message
            # a known command's error shows its usage; an unknown one points at /help instead
            assert (
                item.usage == COMMANDS[item.name].usage
                if item.name in COMMANDS
                else "/help" in item.message or not item.name
            )
        else:
            json.dumps(item.as_kwargs())  # a task message: JSON-safe


@FAST
@given(COMMENT)
@example("/reject   ")
@example("/train --param")
@example("/rollback prod '")
def test_any_comment_is_commands_or_errors_never_an_exception(text):
    out = parse_comment(text)
    _well_formed(out)
    commands = [c for c in out if c.name]  # the overflow notice has no name
    assert len(commands) <= MAX_COMMANDS
    assert len(out) <= MAX_COMMANDS + 1


@FAST
@given(st.text(max_size=30), st.text(max_size=200))
def test_any_name_and_arguments_parse_to_a_command_or_an_error(name, rest):
    _well_formed([parse_command(name, rest.strip())])  # both callers strip the arguments


def test_arguments_of_only_whitespace_are_an_error_not_an_exception():
    """Found here: `/reject` read words[0] of whitespace-only arguments (IndexError); callers strip, new ones may not."""
    [error] = [parse_command("reject", "   ")]
    assert isinstance(error, CommandError) and error.usage == COMMANDS["reject"].usage


@FAST
@given(st.one_of(st.text(max_size=200), st.builds(" ".join, st.lists(st.one_of(st.sampled_from(NAMES), ARG)))))
def test_any_slack_text_parses_to_a_command_or_an_error(text):
    _well_formed([parse_slack_text(text)])


PROSE = st.text(max_size=40).filter(
    lambda s: "\n" not in s and not s.strip().startswith(("/", "`", "~")) and "\r" not in s
)
HIDDEN = st.one_of(
    st.builds(lambda c: "> " + c, COMMAND_LINE),
    st.builds(lambda c: ">" + c, COMMAND_LINE),
    st.builds(lambda c: "    " + c, COMMAND_LINE),
    st.builds(lambda c: "\t" + c, COMMAND_LINE),
    st.builds(
        lambda fence, info, body: f"{fence}{info}\n" + "\n".join(body) + f"\n{fence}",
        st.sampled_from(["```", "~~~", "````", "~~~~~"]),
        st.sampled_from(["", "python", "sh"]),
        st.lists(st.one_of(COMMAND_LINE, PROSE), min_size=1, max_size=5),
    ),
)


@FAST
@given(st.lists(st.one_of(HIDDEN, PROSE), max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_quoted_indented_and_fenced_commands_are_never_commands(parts, sep):
    assert parse_comment(sep.join(parts)) == []


# GitHub renders comments as CommonMark: a line is a command only if it shows as text, not as code,
# not inside a quote, not hidden (an HTML comment or block). markdown-it-py is a CommonMark parser.
MARKDOWN = MarkdownIt("commonmark")


def shown_as_text(text: str) -> list[str]:
    """The stripped source lines of paragraphs and headings outside any blockquote."""
    lines, out, open_blocks = text.replace("\r\n", "\n").split("\n"), [], []
    for token in MARKDOWN.parse(text):
        if token.nesting == 1:
            open_blocks.append(token.type)
        if token.type in ("paragraph_open", "heading_open") and "blockquote_open" not in open_blocks and token.map:
            out += [lines[i].strip() for i in range(*token.map)]
        if token.nesting == -1:
            open_blocks.pop()
    return out


PIECE = st.one_of(
    COMMAND_LINE.map(lambda line: line.replace("\r", " ")),  # a lone CR ends a line for CommonMark only
    # no list items: a command in a list item is not a command (core/commands.py), while shown_as_text says it is
    st.sampled_from(["/train full", "text", "", "***", "---", "    code", "\t/train toy", "> quoted\n"]),
    # fences, opening or closing, indented at most 3, no info string
    st.sampled_from(["```", "~~~", "````", "   ```", "~~~~"]),
)


@FAST
@given(st.lists(PIECE, max_size=10))
def test_a_command_is_a_line_github_shows_as_text(pieces):
    text = "\n".join(pieces)
    shown = shown_as_text(text)
    for line in command_lines(text):
        assert line in shown, f"{line!r} runs but GitHub does not show it as text: {text!r}"
        shown.remove(line)


@pytest.mark.parametrize(
    "text",
    [  # found here, fixed in core.commands.command_lines
        pytest.param("```\n    ```\n/train full\n```", id="a 4-space-indented ``` does not close a fence"),
        pytest.param("```\n``` x\n/train full\n```", id="a ``` with text after it does not close a fence"),
        pytest.param("<!--\n/train full\n-->", id="in an HTML comment: invisible"),
        pytest.param("   ```\n/train full\n   ```", id="a fence indented 3 spaces"),
    ],
)
def test_lines_in_code_or_html_comments_are_not_commands(text):
    assert shown_as_text(text) == []
    assert parse_comment(text) == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<details>\n/train full\n</details>", id="in an HTML block: folded away"),
        pytest.param("> I think we should\n/train full", id="a quote's lazy continuation line"),
        pytest.param(" \t/train full", id="space and tab: an indented code block"),
        pytest.param("- ```\n  /train full\n  ```", id="in a fence inside a list item"),
        pytest.param("- item\n   ```\n```\n/train full", id="after a list item's fence, a new fence opens"),
        pytest.param("see <!-- a note\n/train full\n-->", id="in an inline HTML comment: invisible"),
    ],
)
def test_lines_github_shows_as_code_quote_or_not_at_all_are_not_commands(text):
    """Each of these renders `/train full` inside a code block, a quote, or not at all (CommonMark)."""
    assert parse_comment(text) == []


# --- branch names and job names -------------------------------------------------------------------
# git check-ref-format --branch: no control characters, space, ~ ^ : ? * [ \ or "..", "@{", "//";
# a component neither starts with "." nor ends with ".lock"; the name does not start with "-" or "/",
# does not end with "/" or ".", and is not "@" nor "HEAD".
_BANNED = set(" ~^:?*[\\\x7f") | {chr(c) for c in range(32)}
COMPONENT_CHARS = st.characters(blacklist_characters="".join(_BANNED) + "/", blacklist_categories=("Cs",))
COMPONENT = (
    st.one_of(
        st.text(COMPONENT_CHARS, min_size=1, max_size=12),
        st.sampled_from(
            ["feature", "fix", "@", "a@b", "v1.2", "ünïcödé", "日本語", "x.y", "#1", "%20", "a+b", "@home"]
        ),
    )
    .map(lambda c: c.replace("..", ".").replace("@{", "@"))
    .filter(lambda c: not c.startswith(".") and not c.endswith((".lock", ".")) and ".." not in c and "@{" not in c)
)
BRANCH = (
    st.lists(COMPONENT, min_size=1, max_size=5)
    .map("/".join)
    .filter(lambda b: not b.startswith("-") and b not in ("@", "HEAD") and "@{" not in b and ".." not in b)
)
WORKFLOW = st.from_regex(r"[A-Za-z0-9_.-]{1,100}", fullmatch=True)
ENVIRONMENT = st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9_.-]{1,30}", fullmatch=True))
REPO = st.builds(lambda o, r: f"{o}/{r}", *[st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)] * 2)
PREFIX = st.one_of(st.just("mlops-bot"), st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True))


@settings(SOME, max_examples=10)
@given(st.lists(BRANCH, min_size=20, max_size=20))
def test_the_branch_names_made_up_here_are_ones_git_accepts(branches):
    for b in branches:
        ok = subprocess.run(["git", "check-ref-format", "--branch", b], capture_output=True).returncode == 0
        assert ok, f"git refuses {b!r}: the strategy is wrong, not the bot"


@FAST
@given(PREFIX, REPO, BRANCH, WORKFLOW, ENVIRONMENT)
@example("mlops-bot", "acme/tiny-ml", "feature/a@b/x.y", "train", "staging")
@example("mlops-bot", "acme/tiny-ml", "@", "train", "")
def test_a_job_name_gives_back_its_repo_branch_and_workflow(prefix, repo, branch, workflow, environment):
    name = job_name(prefix, repo, branch, workflow, environment)
    assert parse_job_name(prefix, name) == (repo, branch, workflow)
    assert parse_any_job_name(name, prefix) == (repo, branch, workflow)
    assert parse_any_job_name(name) == (repo, branch, workflow)


NAME_RULE = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _with_name(kind: str, name: str) -> dict:
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data[kind][name] = data[kind]["dev" if kind == "environments" else "train"]
    return data


@FAST
@given(st.sampled_from(["environments", "workflows"]), st.text(min_size=1, max_size=12))
@example("environments", "eu/prod")  # found here: an environment with '/' broke the job name's round trip
def test_environment_and_workflow_names_config_accepts_keep_the_job_name_readable(kind, name):
    try:
        parse_config(_with_name(kind, name))
    except ConfigError as exc:
        assert f"{kind}.{name}" in str(exc)
        return
    assert NAME_RULE.fullmatch(name), f"config accepts {kind} name {name!r}"
    env, workflow = (name, "deploy") if kind == "environments" else ("", name)
    assert parse_job_name("mlops-bot", job_name("mlops-bot", "acme/m", "main", workflow, env)) == (
        "acme/m",
        "main",
        workflow,
    )


@pytest.mark.parametrize("kind, name", [("workflows", "lint\n"), ("environments", "dev\n")])
def test_a_name_with_a_trailing_newline_is_refused(kind, name):
    with pytest.raises(ConfigError):
        parse_config(_with_name(kind, name))


# --- tags -----------------------------------------------------------------------------------------
TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-=._:/@")


@FAST
@given(st.text(max_size=400))
def test_a_tag_value_is_short_and_uses_only_the_characters_databricks_allows(value):
    out = tag_value(value)
    assert isinstance(out, str) and len(out) <= MAX_TAG_VALUE and set(out) <= TAG_CHARS


@FAST
@given(REPO, BRANCH, WORKFLOW, st.text(max_size=80), st.text(max_size=80))
def test_job_tags_fit_a_job(repo, branch, workflow, sha, fingerprint):
    tags = job_tags(repo, branch, workflow, sha, fingerprint[:16])
    assert len(tags) <= MAX_TAGS
    assert all(isinstance(v, str) and len(v) <= MAX_TAG_VALUE for v in tags.values())


@pytest.fixture(scope="module")
def real_settings() -> Settings:
    from core.config import load_config

    return load_config(ROOT / "config.toml")


@settings(SOME, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(branch=BRANCH, sha=st.text(max_size=80))
def test_a_branch_jobs_settings_keep_every_tag_within_the_limits(real_settings, branch, sha):
    repo = real_settings.repos[0]
    for workflow in real_settings.repo_workflows(repo):
        body = job_settings(real_settings, repo, branch, workflow, sha)
        assert len(body["tags"]) <= MAX_TAGS
        for key, value in body["tags"].items():
            assert isinstance(value, str) and len(value) <= MAX_TAG_VALUE and set(value) <= TAG_CHARS, key
        assert parse_job_name(real_settings.bot.job_prefix, body["name"]) == (repo.name, branch, workflow)


@settings(SOME, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reason=st.text(max_size=3000),
    approver=st.text(min_size=1, max_size=300),
    metrics=st.dictionaries(st.text(max_size=200), st.floats(-1e9, 1e9, allow_nan=False), max_size=20),
)
def test_registry_tags_the_bot_writes_stay_within_the_registry_limits(
    real_settings, redis_client, reason, approver, metrics
):
    """What a validate run reports and a rejection's reason are outside text: the version tags the bot
    writes stay within MLflow's registry limits and the bot's own 500-character caps."""
    redis_client.flushdb()
    w = world(real_settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice")
    w.registry.add_version(PROD, "1", "r1", {"accuracy": 0.5, "roc_auc": 0.5})
    w.registry.set_alias(PROD, "champion", "1")
    w.registry.add_version(STAGING, "2", "r2", {"accuracy": 0.9})
    w.registry.run_tags_["r2"] = {"mlflow.databricks.jobRunId": str(TRAIN_RUN)}
    record = lineage.record(
        repo=REPO_NAME, branch="main", sha="c" * 40, pr=PR, author="alice", merged_by="erin", registry=STAGING
    )
    w.deps.state.record_lineage("staging", TRAIN_RUN, record)
    w.deps.workspaces("staging").ran(TRAIN_RUN, '{"mlflow_run_id": "r2"}')  # what its register step said
    lineage.finished(w.deps.state, "staging", TRAIN_RUN)  # the bot saw it end
    validate(w, json.dumps({"metrics": {"accuracy": 0.9, **metrics}, "passed": bool(len(reason) % 2)}))
    request = w.deps.state.approval(STAGING, "2")
    approvals.reject(w.deps, request, approver, "github", reason)
    assert {"validation_summary", "rejected_by", "rejection_reason"} <= set(w.registry.tags[(STAGING, "2")])
    for (_model, _version), tags in w.registry.tags.items():
        for key, value in tags.items():
            assert len(key) <= MAX_MODEL_REGISTRY_TAG_KEY_LENGTH
            assert isinstance(value, str) and len(value) <= MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, key
            if key in ("rejection_reason", "validation_summary"):
                assert len(value) <= 500


# --- gates ----------------------------------------------------------------------------------------
NUMBER = st.one_of(
    st.floats(0, 10, allow_nan=False).map(lambda f: f"{f:.4f}"),
    st.from_regex(r"[\d.]{1,6}", fullmatch=True),
)
GATE_TEXT = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda metric, op, rhs, pad: f"{pad}{metric} {op} {rhs}{pad}",
        st.sampled_from(["accuracy", "roc_auc", "x", "ünï"]),
        st.sampled_from([">=", "<=", ">", "<", "==", "=>"]),
        st.one_of(NUMBER, st.builds(lambda s, n: f"champion {s} {n}", st.sampled_from("+-*"), NUMBER)),
        st.sampled_from(["", " ", "\t"]),
    ),
)
METRICS = st.dictionaries(st.sampled_from(["accuracy", "roc_auc", "x"]), st.floats(-1e6, 1e6, allow_nan=False))


def _config_reads(gate: str) -> bool:
    """The gate as config reads it: accepted, or refused with GATE_HELP in the message."""
    try:
        Model(gates=[gate])
    except ValueError as exc:
        assert GATE_HELP in str(exc)
        return False
    return True


@FAST
@given(GATE_TEXT, METRICS, st.one_of(st.none(), METRICS))
def test_any_gate_text_is_read_or_refused_with_the_help(gate, metrics, champion):
    accepted = _config_reads(gate)
    assert accepted == bool(GATE.match(gate))
    result = evaluate(gate, metrics, champion)
    assert isinstance(result, GateResult) and isinstance(result.passed, bool)
    if not accepted:
        assert result.detail == "cannot read this gate"


@pytest.mark.parametrize("gate", ["accuracy >= 1.2.3", "accuracy >= .", "accuracy >= champion - 0..1"])
def test_a_gate_with_a_malformed_number_is_refused_by_config(gate):
    """Found here: GATE read numbers as [\\d.]+, config accepted these and evaluate raised ValueError."""
    assert not _config_reads(gate)
    assert evaluate(gate, {"accuracy": 0.9}, {"accuracy": 0.8}).detail == "cannot read this gate"


# --- config ---------------------------------------------------------------------------------------
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["dev", "train", "acme/churn-model", "champion", "merge", "approval", "accuracy >= 0.8"]),
)
KEY = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["bot", "github", "workflows", "environments", "models", "repos", "stages", "tasks", "name"]),
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEY, inner, max_size=4)),
    max_leaves=20,
)
REAL = tomllib.loads((ROOT / "config.toml").read_text())


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(REAL) if p]


def _mutated(path: tuple, value, drop: bool) -> dict:
    data = json.loads(json.dumps(REAL))  # a deep copy (config.toml has no dates)
    node = data
    for part in path[:-1]:
        node = node[part]
    if drop and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def _parses_or_refuses(data) -> None:
    try:
        out = parse_config(data)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(out, Settings)


@FAST
@given(st.dictionaries(KEY, VALUE, max_size=6))
def test_any_nested_dict_is_settings_or_a_config_error(data):
    _parses_or_refuses(data)


@settings(FAST, max_examples=400)
@given(st.sampled_from(PATHS), VALUE, st.booleans())
def test_any_change_to_the_real_config_is_settings_or_a_config_error(path, value, drop):
    _parses_or_refuses(_mutated(path, value, drop))


def test_a_stage_named_with_an_array_is_a_config_error():
    data = _mutated(("models", "churn-model", "stages", 0), {"name": []}, drop=False)
    with pytest.raises(ConfigError):
        parse_config(data)
