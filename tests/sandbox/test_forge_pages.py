"""The sandbox forge's pull request page shows comments as GitHub renders their Markdown, and never runs a script.

What it follows, quoted where it is tested:
* the GitHub Flavored Markdown Spec (github.github.com/gfm): tables (§4.10), fenced code (§4.5), code spans
  (§6.1), links (§6.3), task list items (§5.3), and §6.11 "Disallowed Raw HTML (extension)": "Filtering is done
  by replacing the leading < with the entity &lt;.";
* GitHub Docs, "Organizing information with collapsed sections": "You can temporarily obscure sections of your
  Markdown by creating a collapsed section that the reader can choose to expand." (`<details>`/`<summary>`);
* github/markup's README on what github.com does after rendering: "The HTML is sanitized, aggressively removing
  things that could harm you and your kin—such as script tags, inline-styles, and class or id attributes."
The report comment is the bot's own (`workers.jobs.reports.render_result` behind its sticky marker).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from github import Auth, Github

from sandbox.forge.markdown import render
from tests.fakes import run_record, run_result
from tests.support import stand_ins
from tests.support.forge_seeds import users
from tests.support.pushes import push_new_commit, push_url
from workers.gateways.forge import marker
from workers.jobs.reports import render_result

TOKENS = {"alice": "ghp_alice", "mlops-bot": "ghp_bot"}
FAST = {"retry": None, "seconds_between_requests": 0, "seconds_between_writes": 0}


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forge-pages")
    (tmp / "src").mkdir()
    (tmp / "src" / "README.md").write_text("# churn\n")
    perms = '{ alice = "write", "mlops-bot" = "write" }'
    seed = f'{users(TOKENS)}\n[[repos]]\nfull_name = "acme/churn"\ninit_from = "src"\npermissions = {perms}\n'
    (tmp / "seed.toml").write_text(seed)
    proc, base = stand_ins.start("forge", ["--data", str(tmp / "data"), "--seed", str(tmp / "seed.toml")], {}, 30)
    yield base, tmp
    stand_ins.stop(proc)


def report() -> str:
    """The bot's report on a failed run, as its sticky comment carries it: a table, details, a code block."""
    record = run_record(sha="f8d8bbc" + "0" * 33, parameters={"dataset": "toy"}, requested_by="alice")
    tasks = [
        {"key": "prepare", "run_id": 71, "result": "SUCCESS", "duration_s": 3.1, "output": "ok"},
        {"key": "train", "run_id": 72, "result": "FAILED", "duration_s": 5.0, "output": "ValueError: x < y"},
    ]
    result = run_result(result="FAILED", duration_s=9.0, run_page_url="/jobs/1/runs/7", tasks=tasks)
    return f"{marker('report', 'train')}\n{render_result(record, result)}"


@pytest.fixture(scope="module")
def page(forge) -> str:
    """The pull request page, after alice's description, the bot's report and a comment trying a script."""
    base, tmp = forge
    push_new_commit(push_url(base, "acme/churn", "alice", TOKENS["alice"]), tmp / "wc", "feature", "alice")
    alice = Github(base_url=base, auth=Auth.Token(TOKENS["alice"]), **FAST).get_repo("acme/churn")
    pr = alice.create_pull(base="main", head="feature", title="Better churn", body="Adds `max_depth`:\n\n- [x] tests")
    bot = Github(base_url=base, auth=Auth.Token(TOKENS["mlops-bot"]), **FAST).get_repo("acme/churn")
    bot.get_issue(pr.number).create_comment(report())
    alice.get_issue(pr.number).create_comment('<script>alert("pwned")</script>\n\n<b onclick="steal()">bold</b>')
    answer = requests.get(f"{base}/acme/churn/pull/{pr.number}", timeout=10)
    assert answer.status_code == 200
    return answer.text


def test_the_report_renders_as_on_github(page):
    assert re.search(r"<table>\s*<thead>\s*<tr>\s*<th>Task</th>", page)  # §4.10 tables
    assert "<details><summary>Output of <code>train</code> (FAILED)</summary>" in page  # collapsed section
    assert "<pre><code>ValueError: x &lt; y\n</code></pre>" in page  # §4.5 fenced code, its text escaped
    assert "<code>train</code>" in page and "<h3>" in page  # §6.1 code spans, ATX headings
    assert '<a href="/jobs/1/runs/7" rel="nofollow">Databricks run</a>' in page  # §6.3 links
    assert "mlops-bot:report" not in page  # the hidden marker stays hidden
    # §5.3 task list items, in alice's description
    assert '<input type="checkbox" class="task-list-item-checkbox" checked disabled> tests' in page


def test_a_script_in_a_comment_is_shown_never_run(page):
    # §6.11: "Filtering is done by replacing the leading < with the entity &lt;."; github/markup: sanitized,
    # removing "script tags, inline-styles, and class or id attributes"
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt;' in page
    assert "<script" not in page.lower()
    assert "<b>bold</b>" in page and "onclick" not in page


@pytest.mark.parametrize(
    "markdown, shown",
    [
        ("| a | b |\n|:--|--:|\n| 1 | 2 |", '<th align="left">a</th>\n<th align="right">b</th>'),
        ("- [ ] todo\n- [x] done", '<li class="task-list-item"><input type="checkbox" class="task-list-item-checkbox"'),
        ("# Title\n## Sub", "<h1>Title</h1>\n<h2>Sub</h2>"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
        ("line one\nline two", "<p>line one<br>\nline two</p>"),  # comments keep their line breaks
        ("~~gone~~ **bold** _it_", "<p><s>gone</s> <strong>bold</strong> <em>it</em></p>"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),  # not a link: an unsafe URL
        ('<a href="javascript:alert(1)">x</a>', '<a rel="nofollow">x</a>'),
        ('<a href="//evil.example/x">x</a>', '<a rel="nofollow">x</a>'),
        ('<img src="x.png" onerror="alert(1)">', '<img src="x.png">'),
        ('<div style="color:red" class="x" id="y">d</div>', "<div>d</div>"),
        ("<iframe src=x></iframe>", "&lt;iframe src=x&gt;&lt;/iframe&gt;"),
        ("<div><span>not closed", "<div><span>not closed</span></div>"),  # cannot swallow the page
        ("a </div></div> b", "<p>a &lt;/div&gt;&lt;/div&gt; b</p>"),  # nor close the page's own
        ("<!-- mlops-bot:report key=train -->\nshown", "<p>shown</p>"),
    ],
)
def test_markdown_and_html_as_github_shows_them(markdown, shown):
    assert shown in render(markdown)


def test_the_page_is_self_contained(page):
    assert "<style>" in page and ".md table" in page  # GitHub-like table, code and details styles, inline
    assert not re.search(r"<(link|script)\b", page)


def test_a_page_without_description_says_so(forge):
    base, tmp = forge
    checkout = Path(tmp / "wc2")
    push_new_commit(push_url(base, "acme/churn", "alice", TOKENS["alice"]), checkout, "quiet", "alice")
    alice = Github(base_url=base, auth=Auth.Token(TOKENS["alice"]), **FAST).get_repo("acme/churn")
    pr = alice.create_pull(base="main", head="quiet", title="No words")
    assert "<em>No description provided.</em>" in requests.get(f"{base}/acme/churn/pull/{pr.number}", timeout=10).text
