"""Minimal self-contained HTML pages (no external assets) for html_url links; issue and PR bodies and comments
rendered as GitHub renders their Markdown (`markdown.py`)."""

from __future__ import annotations

import html as _html

from . import gitops
from .markdown import render

CSS = """body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#1f2328}
a{color:#0969da;text-decoration:none}.box{border:1px solid #d0d7de;border-radius:6px;margin:1em 0}
.hd{background:#f6f8fa;padding:.5em 1em;border-bottom:1px solid #d0d7de;font-size:.9em}
.bd{padding:.5em 1em;white-space:pre-wrap}.st{display:inline-block;padding:.2em .7em;border-radius:1em;
color:#fff;font-size:.85em}.open{background:#1f883d}.closed{background:#cf222e}.merged{background:#8250df}
code{background:#f6f8fa;padding:.1em .3em;border-radius:4px}table{border-collapse:collapse}
td{padding:.2em .6em;border-bottom:1px solid #eee}
.md{padding:.5em 1em;line-height:1.5}.md>:first-child{margin-top:0}.md>:last-child{margin-bottom:0}
.md p,.md ul,.md ol,.md table,.md pre,.md blockquote,.md details{margin:0 0 1em}
.md h1,.md h2{border-bottom:1px solid #d0d7de;padding-bottom:.3em}.md h1,.md h2,.md h3{margin:1.2em 0 .6em}
.md table{display:block;overflow:auto}.md th{font-weight:600;background:#f6f8fa}
.md th,.md td{border:1px solid #d0d7de;padding:.3em .8em}
.md pre{background:#f6f8fa;border-radius:6px;padding:1em;overflow:auto;line-height:1.45}
.md pre code{background:none;padding:0;font-size:.85em}.md blockquote{color:#59636e;border-left:.25em solid
#d0d7de;padding:0 1em;margin-left:0}.md summary{cursor:pointer}.md .task-list-item{list-style:none}
.md .task-list-item-checkbox{margin:0 .3em 0 -1.4em;vertical-align:middle}.md img{max-width:100%}"""


def esc(text) -> str:
    return _html.escape("" if text is None else str(text), quote=True)


def layout(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body><p><a href='/'>sandbox forge</a></p>{body}</body></html>"
    )


def not_found() -> str:
    return layout("Not Found", "<h1>404</h1><p>Not Found</p>")


def index_page(forge) -> str:
    rows = "".join(
        f"<li><a href='/{esc(r['full_name'])}'>{esc(r['full_name'])}</a>"
        f"{' (fork of ' + esc(r['fork_of']) + ')' if r.get('fork_of') else ''}</li>"
        for r in forge.state["repos"].values()
    )
    return layout("sandbox forge", f"<h1>Repositories</h1><ul>{rows}</ul>")


def repo_page(forge, rec) -> str:
    full = rec["full_name"]
    refs = gitops.list_refs(forge.repo_path(rec))
    branches = "".join(
        f"<tr><td>{esc(r[11:])}</td><td><a href='/{esc(full)}/commit/{s}'><code>{s[:12]}</code></a></td></tr>"
        for r, s in sorted(refs.items())
    )
    items = sorted(rec["issues"].values(), key=lambda i: -i["number"])
    issues = "".join(
        f"<tr><td>#{i['number']}</td><td><a href='/{esc(full)}/{'pull' if i.get('kind') == 'pr' else 'issues'}/"
        f"{i['number']}'>{esc(i['title'])}</a></td><td>{esc(state_label(i))}</td></tr>"
        for i in items
    )
    return layout(
        full,
        f"<h1>{esc(full)}</h1><p>clone: <code>{esc(forge.base)}/{esc(full)}.git</code></p>"
        f"<h2>Branches</h2><table>{branches}</table>"
        f"<h2>Pull requests &amp; issues</h2><table>{issues}</table>",
    )


def state_label(issue) -> str:
    if issue.get("merged"):
        return "merged"
    return issue["state"]


def issue_page(forge, rec, issue) -> str:
    full = rec["full_name"]
    label = state_label(issue)
    parts = [
        f"<h1>{esc(issue['title'])} <span style='color:#656d76'>#{issue['number']}</span></h1>",
        f"<p><span class='st {label}'>{esc(label.capitalize())}</span> "
        f"<b>{esc(issue['user'])}</b> opened this {'pull request' if issue.get('kind') == 'pr' else 'issue'}"
        f" at {esc(issue['created_at'])}</p>",
    ]
    if issue.get("kind") == "pr":
        head_owner = issue["head_repo"].split("/")[0]
        merged = ""
        if issue.get("merged") and issue.get("merge_commit_sha"):
            merged = f" &mdash; merged as <code>{esc(issue['merge_commit_sha'][:12])}</code>"
        parts.append(
            f"<p>wants to merge <code>{esc(head_owner)}:{esc(issue['head_ref'])}</code> into "
            f"<code>{esc(issue['base_ref'])}</code> &mdash; head "
            f"<code>{esc(issue['head_sha'][:12])}</code>{merged}"
            f" &middot; <a href='/{esc(full)}/pull/{issue['number']}.diff'>diff</a></p>"
        )
    parts.append(
        f"<div class='box'><div class='hd'><b>{esc(issue['user'])}</b> commented "
        f"{esc(issue['created_at'])}</div>"
        f"<div class='md'>{render(issue.get('body') or '*No description provided.*')}</div></div>"
    )
    comments = sorted(
        (c for c in forge.state["comments"].values() if c["repo"] == full and c["number"] == issue["number"]),
        key=lambda c: c["id"],
    )
    for c in comments:
        reactions = {}
        for r in forge.state["reactions"].values():
            if r["comment_id"] == c["id"]:
                reactions[r["content"]] = reactions.get(r["content"], 0) + 1
        react = " ".join(f"<code>{esc(k)} {v}</code>" for k, v in reactions.items())
        edited = " (edited)" if c["updated_at"] != c["created_at"] else ""
        parts.append(
            f"<div class='box' id='issuecomment-{c['id']}'><div class='hd'><b>{esc(c['user'])}</b> "
            f"commented {esc(c['created_at'])}{edited}</div><div class='md'>{render(c['body'])}</div>"
            f"{'<div class=hd>' + react + '</div>' if react else ''}</div>"
        )
    if issue.get("kind") == "pr":
        statuses = {}
        for s in sorted(forge.state["statuses"], key=lambda s: s["id"]):
            if s["repo"] == full and s["sha"] == issue["head_sha"]:
                statuses[s["context"]] = s
        checks = [
            cr
            for cr in forge.state["check_runs"].values()
            if cr["repo"] == full and cr["head_sha"] == issue["head_sha"]
        ]
        rows = "".join(
            f"<tr><td>{esc(s['context'])}</td><td>{esc(s['state'])}</td><td>{esc(s.get('description'))}</td></tr>"
            for s in statuses.values()
        )
        rows += "".join(
            f"<tr><td>{esc(cr['name'])}</td><td>{esc(cr.get('conclusion') or cr['status'])}</td>"
            f"<td>{esc((cr.get('output') or {}).get('title'))}</td></tr>"
            for cr in checks
        )
        if rows:
            parts.append(f"<h3>Checks</h3><table>{rows}</table>")
    return layout(f"{issue['title']} · #{issue['number']} · {full}", "".join(parts))


def commit_page(forge, rec, sha) -> str:
    info = gitops.commit_info(forge.repo_path(rec), sha)
    files = gitops.changed_files(forge.repo_path(rec), sha, info["parents"])
    rows = "".join(
        f"<tr><td>{esc(f['status'])}</td><td>{esc(f['filename'])}</td><td>+{f['additions']} -{f['deletions']}</td></tr>"
        for f in files
    )
    return layout(
        f"{sha[:12]} · {rec['full_name']}",
        f"<h1>Commit <code>{sha[:12]}</code></h1><p>{esc(info['author']['name'])} "
        f"&lt;{esc(info['author']['email'])}&gt; {esc(info['author']['date'])}</p>"
        f"<div class='box'><div class='bd'>{esc(info['message'])}</div></div>"
        f"<p>parents: {' '.join('<code>' + p[:12] + '</code>' for p in info['parents'])}</p>"
        f"<table>{rows}</table>",
    )


def docs_page() -> str:
    return layout(
        "sandbox forge docs",
        "<h1>sandbox forge</h1><p>A local GitHub-compatible forge for testing. It implements a subset "
        "of the GitHub REST API (see sandbox/forge/README.md in the mlops-bot repository).</p>",
    )
