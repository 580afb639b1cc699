"""Slash commands in PR comments and Slack: the one table of commands, and a pure parser with clear errors.

`COMMANDS` holds every piece of a command but the service that acts on it: its usage, its `/help` line, its
parser, the least repository role it needs by default (config.toml's `[permissions]` may change it), and its
Slack form. The services are mapped by name in `workers/pr/chatops.py` (and `workers/release/slack_commands.py`), which
check at import that the mapping covers the table (`require_handlers`), so a worker with a gap never starts.

A command is a line that starts with `/word`. Lines inside fenced or indented code blocks and
quoted replies (`> …`) are not commands, so quoting someone's `/train full` does not run it.
Several commands in one comment are each honoured, in order.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from markdown_it import MarkdownIt

_COMMAND_LINE = re.compile(r"^/(?P<name>[a-z][a-z-]*)(?=\s|$)(?P<rest>.*)$")
_PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WORKFLOW = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # a workflow's name, as config.toml allows it
_MODEL_REF = re.compile(r"^(?P<model>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})@(?P<version>[1-9][0-9]{0,9})$")
_MARKDOWN = MarkdownIt("commonmark")
# What can make a line something other than paragraph text: leading whitespace (code, list continuation),
# a block's first character (quote, list, heading underline, thematic break, link definition), a fence,
# HTML, a lone CR. A comment with none of these is plain lines and needs no Markdown parser.
_MAY_HIDE = re.compile(r"(?m)^[ \t>*+\-=_\[\d#]|```|~~~|<|\r(?!\n)")
MAX_COMMANDS = 10  # one comment may not fan out into unbounded work
Permission = Literal["none", "read", "triage", "write", "maintain", "admin"]


@dataclass(frozen=True)
class Command:
    name: str
    dataset: str = ""
    params: dict[str, str] = field(default_factory=dict)
    suite: str = ""
    model: str = ""
    version: str = ""
    reason: str = ""
    environment: str = ""
    workflow: str = ""  # `/run <workflow>`
    line: str = ""
    commented_at: str = ""  # a PR comment's time, set by the receiver: `/ok-to-test` weighs it against the push

    def as_kwargs(self) -> dict:
        """Plain values for a task message (JSON-safe)."""
        return {k: v for k, v in self.__dict__.items() if v not in ("", {}) or k == "name"}

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Command:
        """The command a task message carries (`as_kwargs`); a key it does not know is left out."""
        return cls(**{f.name: kwargs[f.name] for f in fields(cls) if f.name in kwargs})


Parser = Callable[[str, list[str], str, str], Command]  # (name, words, the text after the name, line)


@dataclass(frozen=True)
class CommandSpec:
    """One command: everything about it but the service that acts on it (mapped by name in the workers)."""

    name: str
    usage: str
    help: str  # its line in `/help`
    parse: Parser
    permission: Permission  # the least repository role by default; config.toml's [permissions] may change it
    checks_approver: bool = False  # the approval policy decides who may (approver lists), not [permissions]
    gated: tuple[tuple[str, Permission], ...] = ()  # forms with a permission of their own, e.g. `train-full`
    slack_usage: str = ""  # its `/mlops` form, when Slack takes it
    runs_workflow: bool = False  # a workflow names it (`command = "train"`) to be the one it runs


@dataclass(frozen=True)
class CommandError:
    name: str
    message: str
    line: str

    @property
    def usage(self) -> str:
        spec = COMMANDS.get(self.name)
        return spec.usage if spec else ""


def command_lines(text: str) -> list[str]:
    """The lines of a comment that may hold commands: the source lines of its top-level paragraphs, as
    GitHub lays them out (CommonMark, which GitHub's Markdown extends) — never code (fenced or indented),
    a quote, a list, an HTML block (`<details>`, a comment) or an inline HTML comment."""
    source = text.replace("\r\n", "\n").split("\n")
    if not _MAY_HIDE.search(text):  # plain lines: every one is paragraph text (the common case, ~50x faster)
        return [line.strip() for line in source if line.startswith("/")]
    tokens = _MARKDOWN.parse("\n".join(source))
    lines: list[str] = []
    for i, token in enumerate(tokens):
        if token.type != "inline" or token.level != 1 or tokens[i - 1].type != "paragraph_open" or not token.map:
            continue
        raw = "\n".join(source[token.map[0] : token.map[1]])
        for child in token.children or []:
            if child.type == "html_inline" and child.content.startswith("<!--"):
                raw = raw.replace(child.content, "", 1)  # an HTML comment shows nothing
        lines += [line.strip() for line in raw.split("\n") if not _indented(line)]
    return [line for line in lines if line.startswith("/")]


def _indented(line: str) -> bool:
    """Four columns in: code to the eye, even where CommonMark continues a paragraph with it."""
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" ")) >= 4


def parse_comment(text: str) -> list[Command | CommandError]:
    """Every command in a comment, in order; malformed ones as `CommandError` with the reason."""
    out: list[Command | CommandError] = []
    for line in command_lines(text):
        m = _COMMAND_LINE.match(line)
        if not m:
            continue  # `/usr/bin/x` or `/ something`: a path or prose, not a command
        if len(out) == MAX_COMMANDS:
            out.append(
                CommandError("", f"more than {MAX_COMMANDS} commands in one comment; the rest are ignored", line)
            )
            break
        out.append(parse_command(m.group("name"), m.group("rest").strip(), line))
    return out


def parse_command(name: str, rest: str, line: str = "") -> Command | CommandError:
    """One command from its name and the text after it."""
    line = line or f"/{name} {rest}".strip()
    spec = COMMANDS.get(name)
    if spec is None:
        return CommandError(name, f"unknown command `/{name}`; try `/help`", line)
    try:
        # shlex only where quoting is possible: it is most of a receiver's parsing time
        words = shlex.split(rest) if any(c in rest for c in "'\"\\") else rest.split()
    except ValueError as exc:
        return CommandError(name, f"cannot read the arguments: {exc}", line)
    try:
        return spec.parse(name, words, rest, line)
    except _Bad as exc:
        return CommandError(name, str(exc), line)


class _Bad(Exception):
    pass


def _no_args(name: str, words: list[str], rest: str, line: str) -> Command:
    if words:
        raise _Bad(f"`/{name}` takes no arguments")
    return Command(name, line=line)


def _train(name: str, words: list[str], rest: str, line: str) -> Command:
    """`/train [model] [dataset] [--param k=v ...]`. One word may be a model's name or a dataset: the parser does not
    know the repository, so it carries the word as `dataset` and the worker resolves it (`workers/pr/policy.py`);
    two words are a model, then a dataset."""
    positional: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--param" or word.startswith("--param="):
            if word == "--param":
                i += 1
                if i == len(words):
                    raise _Bad("`--param` needs key=value")
                pair = words[i]
            else:
                pair = word.removeprefix("--param=")
            key, sep, value = pair.partition("=")
            if not sep or not _PARAM_KEY.match(key):
                raise _Bad(f"`{pair}` is not key=value (key: letters, digits, _ . -)")
            if not value or len(value) > 256:
                raise _Bad(f"`--param {key}` needs a value of 1 to 256 characters")
            if "," in value:  # the job gets `k=v,k=v`: a comma would smuggle in a parameter nobody allowed
                raise _Bad(f"`--param {key}`: a value cannot contain `,` (it separates parameters)")
            if key in params:
                raise _Bad(f"`--param {key}` given twice")
            params[key] = value
        elif word.startswith("-"):
            raise _Bad(f"unknown option `{word}`")
        elif len(positional) == 2:
            raise _Bad(f"a model and a dataset at most, got `{positional[0]}`, `{positional[1]}` and `{word}`")
        elif not _WORD.match(word):
            raise _Bad(f"`{word}` is not a model or dataset name")
        else:
            positional.append(word)
        i += 1
    if len(positional) == 2:
        return Command(name, model=positional[0], dataset=positional[1], params=params, line=line)
    return Command(name, dataset=positional[0] if positional else "", params=params, line=line)


def _test(name: str, words: list[str], rest: str, line: str) -> Command:
    if len(words) > 1:
        raise _Bad("`/test` takes at most one suite")
    if words and not _WORD.match(words[0]):
        raise _Bad(f"`{words[0]}` is not a suite name")
    return Command(name, suite=words[0] if words else "", line=line)


def _run(name: str, words: list[str], rest: str, line: str) -> Command:
    """`/run <workflow> [--param key=value ...]`: the parameters read as `/train` reads them."""
    if not words or words[0].startswith("-"):
        raise _Bad("name the workflow: `/run <workflow>`")
    if not _WORKFLOW.match(words[0]):
        raise _Bad(f"`{words[0][:40]}` is not a workflow name")
    parsed = _train(name, words[1:], rest, line)
    extra = [v for k, v in parsed.as_kwargs().items() if k not in ("name", "params", "line")]
    if extra:
        raise _Bad(f"`/run` takes one workflow and `--param key=value` only, got `{extra[0]}` too")
    return Command(name, workflow=words[0], params=parsed.params, line=line)


def _approve(name: str, words: list[str], rest: str, line: str) -> Command:
    if not words:
        return Command(name, line=line)
    m = _MODEL_REF.match(words[0]) if len(words) == 1 else None
    if not m:
        raise _Bad("give the version as model@version, e.g. `churn-model@7`, or nothing for this PR's newest")
    return Command(name, model=m["model"], version=m["version"], line=line)


def _reject(name: str, words: list[str], rest: str, line: str) -> Command:
    if not rest or not words:
        raise _Bad("say why: `/reject <reason>`")
    model = version = ""
    m = _MODEL_REF.match(words[0])
    if m:
        model, version = m["model"], m["version"]
        rest = rest.split(None, 1)[1] if len(words) > 1 else ""
        if not rest:
            raise _Bad("say why: `/reject <reason>`")
    return Command(name, model=model, version=version, reason=rest[:500], line=line)


def _deploy(name: str, words: list[str], rest: str, line: str) -> Command:
    """`/deploy prod`, or `/deploy prod staging.ml.churn@3` for another version than the PR's newest."""
    m = _MODEL_REF.match(words[1]) if len(words) == 2 else None
    if not words or len(words) > 2 or not _WORD.match(words[0]) or (len(words) == 2 and not m):
        raise _Bad("name one stage, and a version if not this PR's newest: `/deploy prod` or `/deploy prod name@3`")
    if m:
        return Command(name, environment=words[0], model=m["model"], version=m["version"], line=line)
    return Command(name, environment=words[0], line=line)


def _rollback(name: str, words: list[str], rest: str, line: str) -> Command:
    """`/rollback prod`, `/rollback prod 7`, `/rollback prod churn-model@7`."""
    if not 1 <= len(words) <= 2 or not _WORD.match(words[0]):
        raise _Bad("name the stage, and the version to go back to if not the previous one: `/rollback prod 7`")
    if len(words) == 1:
        return Command(name, environment=words[0], line=line)
    m = _MODEL_REF.match(words[1])
    if m:
        return Command(name, environment=words[0], model=m["model"], version=m["version"], line=line)
    if re.match(r"^[1-9][0-9]{0,9}$", words[1]):
        return Command(name, environment=words[0], version=words[1], line=line)
    if _MODEL_REF.match(words[1] + "@1"):  # a model's name alone (Slack, where no PR names the repository)
        return Command(name, environment=words[0], model=words[1], line=line)
    raise _Bad(f"`{words[1][:40]}` is not a version number (e.g. `/rollback prod 7`)")


def parse_slack_text(text: str) -> Command | CommandError:
    """`/mlops approve churn-model 7` → the same Command as `/approve churn-model@7`."""
    words = text.split()
    if not words:
        return CommandError("help", "say what to do, e.g. `/mlops approve churn-model 7`", text)
    name, args = words[0].lower(), words[1:]
    if name in ("approve", "reject") and len(args) >= 2 and args[1].isdigit():
        args = [f"{args[0]}@{args[1]}", *args[2:]]
    if name == "rollback" and len(args) == 3 and args[2].isdigit():  # rollback prod churn-model 7
        args = [args[0], f"{args[1]}@{args[2]}"]
    return parse_command(name, " ".join(args), f"/{name} {' '.join(args)}".strip())


def _command_table(*specs: CommandSpec) -> dict[str, CommandSpec]:
    return {spec.name: spec for spec in specs}


# name, usage, help line, parser, default permission, and what only some commands have, by keyword
COMMANDS = _command_table(
    CommandSpec(
        "train", "/train [model] [toy|full] [--param key=value ...]",
        "train this branch on Databricks: each model of the repository, or the one named (dataset toy by default)",
        _train, "write", gated=(("train-full", "write"),), runs_workflow=True,
    ),
    CommandSpec("test", "/test [suite]", "run the test workflow", _test, "write", runs_workflow=True),
    CommandSpec(
        "run", "/run <workflow> [--param key=value ...]", "run one of this repository's workflows by its name",
        _run, "write",
    ),
    CommandSpec("retest", "/retest", "re-run what last failed on this PR", _no_args, "write"),
    CommandSpec("cancel", "/cancel", "cancel this PR's active runs", _no_args, "write"),
    CommandSpec("status", "/status", "show this PR's runs and their state", _no_args, "read"),
    CommandSpec("help", "/help", "list the commands you may use", _no_args, "read"),
    CommandSpec("ok-to-test", "/ok-to-test", "allow runs for a pull request from a fork", _no_args, "write"),
    CommandSpec(
        "approve", "/approve [model@version]", "approve a validated model version (default: this PR's newest)",
        _approve, "write", checks_approver=True, slack_usage="/mlops approve <model> <version>",
    ),
    CommandSpec(
        "reject", "/reject [model@version] <reason>", "reject this PR's model version (or the one named), with a reason",
        _reject, "write", checks_approver=True, slack_usage="/mlops reject <model> <version> <reason>",
    ),
    CommandSpec(
        "deploy", "/deploy <stage> [name@version]",
        "deploy this merged PR's version again: staging once validated, prod once approved", _deploy, "maintain",
        runs_workflow=True,
    ),
    CommandSpec(
        "rollback", "/rollback prod [version]",
        "move the prod champion back to the previous version (or the one named), and deploy it",
        _rollback, "maintain", slack_usage="/mlops rollback prod <model> [version]",
    ),
)  # fmt: skip
# what a workflow's `command` may name: the commands that run a workflow
WORKFLOW_COMMANDS = tuple(name for name, spec in COMMANDS.items() if spec.runs_workflow)
SLACK_COMMANDS = {name: spec for name, spec in COMMANDS.items() if spec.slack_usage}
# every permission config.toml's [permissions] may set, by command (or gated form) name, with its default
DEFAULT_PERMISSIONS: dict[str, Permission] = {
    name: level for spec in COMMANDS.values() for name, level in ((spec.name, spec.permission), *spec.gated)
}


class IncompleteCommands(RuntimeError):
    """A command lacks a piece (usage, help, parser, permission, service): the worker must not start."""


def table_problems(table: Mapping[str, CommandSpec]) -> list[str]:
    """What each command of `table` lacks, one line per gap."""
    problems = []
    for key, spec in table.items():
        if spec.name != key or not _COMMAND_LINE.match(f"/{key}"):
            problems.append(f"`{key}`: filed under another name than its spec's ({spec.name!r}), or not a /word")
        if not spec.usage.startswith(f"/{key}"):
            problems.append(f"/{key}: no usage starting with `/{key}`")
        if not spec.help.strip():
            problems.append(f"/{key}: no help line")
        if not callable(spec.parse):
            problems.append(f"/{key}: no parser")
        for name, level in ((key, spec.permission), *spec.gated):
            if level not in get_args(Permission):
                problems.append(
                    f"/{key}: {name!r} has no default permission (one of {', '.join(get_args(Permission))})"
                )
    return problems


def handler_problems(names: Iterable[str], handlers: Mapping[str, object], where: str) -> list[str]:
    """The commands `handlers` (mapped in `where`) has no service for, and the services of no command."""
    names = list(names)
    missing = [f"/{n}: no service in {where}" for n in names if not callable(handlers.get(n))]
    return missing + [
        f"{where} maps `{n}`, which is no command in core/commands.py" for n in handlers if n not in names
    ]


def require_handlers(handlers: Mapping[str, object], names: Iterable[str], where: str) -> None:
    """Raise `IncompleteCommands` naming every gap between the table, `names` and `handlers`."""
    problems = table_problems(COMMANDS) + handler_problems(names, handlers, where)
    if problems:
        raise IncompleteCommands("the command table is incomplete:\n  " + "\n  ".join(problems))
