"""Echoing what people typed, safely: every value a person (or a repository's code) controls — a `/reject`
reason, a command line, `--param` values, branch names, tags a training run wrote, metric names, Slack
input — goes through one of these before it is put into a GitHub comment or a Slack message. Pure.

GitHub Markdown (comments; GitHub Flavored Markdown on CommonMark):

- `md_text(s)` — a value inside a sentence. Line breaks and tabs become one space (no heading, list, quote,
  table row, fence or HTML block can start); `&`, `<`, `>` become `&amp;` `&lt;` `&gt;` (no raw HTML:
  no `</details>` closing the bot's own, no `<img>`, no `<!-- mlops-bot:… -->` marker that would make the
  bot edit the wrong comment; the entities render as the characters typed, in GitHub and in Slack alike);
  `\\`, `` ` ``, `[`, `]` get a backslash (no code span swallowing the bot's text, no `[link](…)` in the
  bot's mouth; CommonMark backslash escapes); `@` is followed by a zero-width space (U+200B), so
  `@team` or `@org/team` typed by someone notifies nobody but still reads `@team`. Left alone, on
  purpose: `*`, `_`, `~` (emphasis only changes the look, and `_` is in every metric name) and issue
  references `#12` (they link, they notify no one).
- `md_cell(s)` — `md_text` for a table cell: `|` also gets a backslash (GitHub's documented way to put a
  pipe in a cell).
- `md_code(s)` — a value shown as code, delimiters included: line breaks become spaces and the span is
  fenced with one backtick more than the longest run of backticks inside (CommonMark's rule), padded with
  a space when the value starts or ends with a backtick. Inside a code span GitHub interprets nothing (no
  mention, no HTML). `md_code(s, cell=True)` also escapes `|` — a table is split on pipes before code
  spans are read, even inside them.

- `md_reason(s)` — a sentence the bot wrote with values quoted in backticks, where a value may be anyone's (a
  command parser's error, a refusal, an SDK's message): its code spans stay code spans (re-fenced with
  `md_code`, so a backtick inside a value cannot break out), everything between them is `md_text`. Apply
  it once, to text that holds no `md_text` output (that would show `&amp;amp;`).

Slack (mrkdwn, and plain `text`):

- `slack_text(s)` — `&`, `<`, `>` become `&amp;` `&lt;` `&gt;`, and nothing else, as Slack's "Escaping
  text" says (https://api.slack.com/reference/surfaces/formatting#escaping): those three are its control
  characters, so `<!channel>`, `<@U123>` or `<https://evil|click>` typed by someone is shown, never acted on.

Texts that go to both (a rejection's echo goes to the PR and the Slack thread) use `md_text`: its entities
are Slack's own, the zero-width space is invisible, a backslash before a rare `` ` ``, `[` or `]` shows.

Sizes: `truncate(text, limit)` cuts a body to `limit` characters with a visible "… (truncated)" at the end;
the gateways apply it where bodies leave (GitHub comments 65,536 characters; Slack messages 40,000, a
section block's text 3,000).
"""

from __future__ import annotations

import re

GITHUB_COMMENT_MAX = 65_536  # GitHub answers 422 "body is too long (maximum is 65536 characters)"
SLACK_TEXT_MAX = 40_000  # chat.postMessage: Slack truncates `text` beyond 40,000 characters (changelog 2018-04)
SLACK_BLOCK_TEXT_MAX = 3_000  # Block Kit: a section block's text is at most 3,000 characters (else invalid_blocks)
TRUNCATED = "\n\n… (truncated)"

_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")  # line breaks, tabs and other control characters
_MD_ESCAPE = str.maketrans({"\\": "\\\\", "`": "\\`", "[": "\\[", "]": "\\]"})
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ZWSP = "\u200b"


def one_line(s: object) -> str:
    """`s` on one line: each run of line breaks, tabs or other control characters becomes one space."""
    return _BREAKS.sub(" ", str(s))


def md_text(s: object) -> str:
    """A value inside a sentence of a GitHub comment (see the module docstring)."""
    return one_line(s).translate(_ENTITIES).translate(_MD_ESCAPE).replace("@", "@" + _ZWSP)


def md_cell(s: object) -> str:
    """A value in a GitHub table cell: `md_text`, and `|` escaped."""
    return md_text(s).replace("|", "\\|")


def md_code(s: object, cell: bool = False) -> str:
    """A value as an inline code span, backticks included (see the module docstring)."""
    text = one_line(s)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    if cell:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def _spans(text: str) -> list[tuple[bool, str]]:
    """(is code, part) in order, as CommonMark reads code spans: a run of n backticks opens a span that the next
    run of exactly n closes; a run that nothing closes is literal."""
    parts: list[tuple[bool, str]] = []
    plain, i = "", 0
    for run in re.finditer(r"`+", text):
        if run.start() < i:
            continue  # inside a span already taken
        close = next((m for m in re.finditer(r"`+", text[run.end() :]) if len(m.group()) == len(run.group())), None)
        if close is None:
            continue
        plain += text[i : run.start()]
        parts.append((False, plain))
        code = text[run.end() : run.end() + close.start()]
        if len(code) > 2 and code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]
        parts.append((True, code))
        plain, i = "", run.end() + close.end()
    parts.append((False, plain + text[i:]))
    return [p for p in parts if p[0] or p[1]]


def md_reason(s: object) -> str:
    """Bot-written text with values in backticks: code spans kept, the rest `md_text` (see the module docstring)."""
    return "".join(md_code(part) if code else md_text(part) for code, part in _spans(one_line(s)))


def slack_text(s: object) -> str:
    """A value in a Slack message: Slack's three control characters as entities, nothing else."""
    return str(s).translate(_ENTITIES)


def truncate(text: str, limit: int) -> str:
    """`text`, or its first characters and a visible "… (truncated)" so that the whole is `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)].rstrip() + TRUNCATED
