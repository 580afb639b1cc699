"""Comment bodies rendered the way GitHub renders GitHub-flavoured Markdown in issues and pull requests.

Like GitHub, two steps: Markdown to HTML (markdown-it-py's ``gfm-like`` preset: CommonMark with tables and
strikethrough; line breaks kept, as GitHub keeps them in comments; task lists added here), then a sanitiser that
lets through only the tags and attributes GitHub allows (its allowlist, trimmed to what a comment needs) and
escapes everything else, so ``<script>`` shows as text and never runs. HTML comments are hidden, as on GitHub
(the bot's ``<!-- mlops-bot:... -->`` markers). Unclosed allowed tags are closed, so one comment cannot swallow
the rest of the page. Not done: autolinked bare URLs and @mentions, emoji shortcodes, heading anchors.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

BLOCK = "h1 h2 h3 h4 h5 h6 p div pre blockquote ul ol li dl dt dd table thead tbody tfoot tr th td caption"
INLINE = "a b i em strong code tt kbd samp var sup sub ins del s strike q small mark abbr cite dfn span time ruby rt rp"
ALLOWED = set(f"{BLOCK} {INLINE} details summary figure figcaption picture".split()) | {"br", "hr", "img", "input"}
VOID = {"br", "hr", "img", "input"}
COMMON_ATTRIBUTES = {"align", "title", "lang", "dir"}
ATTRIBUTES = {
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "details": {"open"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "input": {"type", "checked"},
}
TASK_CLASSES = {"task-list-item", "task-list-item-checkbox"}  # the only classes kept: the task list's own
LINK_SCHEMES = {"a": ("http", "https", "mailto"), "img": ("http", "https")}
TEXT_ALIGN = re.compile(r"^text-align:\s*(left|right|center)$")
TASK = re.compile(r"^\[([ xX])\] ")


def _task_lists(state: StateCore) -> None:
    """``- [ ] todo`` / ``- [x] done``: a disabled checkbox at the start of the list item, as GitHub shows it."""
    tokens = state.tokens
    for i, token in enumerate(tokens[:-2]):
        inline = tokens[i + 2]
        if token.type != "list_item_open" or inline.type != "inline" or not inline.children:
            continue
        first = inline.children[0]
        found = TASK.match(first.content) if first.type == "text" else None
        if not found:
            continue
        first.content = first.content[found.end() :]
        checked = " checked" if found.group(1) in "xX" else ""
        box = Token("html_inline", "", 0)
        box.content = f'<input type="checkbox" class="task-list-item-checkbox" disabled{checked}> '
        inline.children.insert(0, box)
        token.attrSet("class", "task-list-item")


MD = MarkdownIt("gfm-like", {"linkify": False, "breaks": True}).disable("linkify")
MD.core.ruler.push("task_lists", _task_lists)


def render(text: str) -> str:
    """A comment body (Markdown) as sanitised HTML."""
    sanitiser = Sanitiser()
    sanitiser.feed(MD.render(text or ""))
    sanitiser.close()
    return "".join(sanitiser.out)


class Sanitiser(HTMLParser):
    """Re-writes HTML keeping GitHub's allowed tags and attributes; anything else is shown as escaped text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.out.append(html.escape(self.get_starttag_text() or f"<{tag}>"))
            return
        kept = "".join(
            f" {name}" if value is None else f' {name}="{html.escape(value)}"' for name, value in _kept(tag, attrs)
        )
        if tag == "a":
            kept += ' rel="nofollow"'
        self.out.append(f"<{tag}{kept}>")
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ALLOWED and tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID and tag in ALLOWED:
            return
        if tag not in ALLOWED or tag not in self.open:
            self.out.append(html.escape(f"</{tag}>"))
            return
        while self.open:
            closing = self.open.pop()
            self.out.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def handle_comment(self, data: str) -> None:
        pass  # hidden, as GitHub hides them

    def handle_decl(self, decl: str) -> None:
        self.out.append(html.escape(f"<!{decl}>"))

    def unknown_decl(self, data: str) -> None:
        self.out.append(html.escape(f"<![{data}]>"))

    def handle_pi(self, data: str) -> None:
        self.out.append(html.escape(f"<?{data}>"))

    def close(self) -> None:
        super().close()
        self.out.extend(f"</{tag}>" for tag in reversed(self.open))
        self.open.clear()


def _kept(tag: str, attrs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """The attributes GitHub keeps on `tag`, with safe values only."""
    kept: list[tuple[str, str | None]] = []
    for name, value in attrs:
        if tag in LINK_SCHEMES and name in ("href", "src"):
            if value is not None and _safe_url(value, LINK_SCHEMES[tag]):
                kept.append((name, value))
        elif name == "style" and tag in ("th", "td") and value and (found := TEXT_ALIGN.match(value.strip())):
            kept.append(("align", found.group(1)))  # markdown-it's column alignment, as GitHub writes it
        elif tag == "input" and name == "type":
            kept.append((name, "checkbox"))
        elif name == "class" and value in TASK_CLASSES:
            kept.append((name, value))
        elif name in COMMON_ATTRIBUTES or name in ATTRIBUTES.get(tag, ()):
            kept.append((name, value))
    if tag == "input":
        kept.append(("disabled", None))  # a task list's box: never a form control
    return kept


def _safe_url(url: str, schemes: tuple[str, ...]) -> bool:
    """A relative URL, or one with an allowed scheme (never ``javascript:``, ``data:``, ``vbscript:``...)."""
    cleaned = "".join(ch for ch in url if ch.isprintable() and not ch.isspace())
    scheme = urlsplit(cleaned).scheme.lower()
    return scheme in schemes if scheme else not cleaned.startswith("//")
