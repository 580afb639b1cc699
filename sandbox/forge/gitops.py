"""What the sandbox forge asks of its bare repositories, through the shared git runner.

Every call passes an argument list (never a shell string). Names coming from
requests must be validated with :func:`valid_branch` / :func:`valid_sha` /
:func:`valid_name` before they reach these helpers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ..common.git import GitError, run_git

ZERO = "0" * 40

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$")
_LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def valid_login(login: str) -> bool:
    return bool(login) and bool(_LOGIN_RE.match(login))


def valid_name(name: str) -> bool:
    """Repository name (without .git)."""
    return bool(_NAME_RE.match(name or "")) and not name.endswith(".git") and name not in (".", "..")


def valid_sha(sha: str) -> bool:
    return bool(_SHA_RE.match(sha or ""))


def valid_short_sha(sha: str) -> bool:
    return bool(_SHORT_SHA_RE.match(sha or ""))


def valid_branch(name: str) -> bool:
    """Mirror of ``git check-ref-format --branch`` rules (conservative)."""
    if not name or len(name) > 255 or name.startswith("-") or name.startswith("/"):
        return False
    if name.endswith("/") or name.endswith(".") or name.endswith(".lock"):
        return False
    if ".." in name or "//" in name or "@{" in name or name == "@":
        return False
    if _BAD_REF_CHARS.search(name):
        return False
    for comp in name.split("/"):
        if not comp or comp.startswith(".") or comp.endswith(".lock"):
            return False
    return True


def valid_refname(ref: str) -> bool:
    """A full ref name like refs/heads/x or refs/tags/v1."""
    if not ref.startswith("refs/") or ref.count("/") < 2:
        return False
    return valid_branch(ref[len("refs/") :])


def run(
    git_dir: str | Path | None,
    args: list[str],
    *,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    cwd: str | None = None,
) -> subprocess.CompletedProcess:
    prefix = [f"--git-dir={git_dir}"] if git_dir is not None else []
    return run_git([*prefix, *args], cwd=cwd, input=input, env=env, timeout=120, check=check)


def out(git_dir, args, **kw) -> str:
    return run(git_dir, args, **kw).stdout.decode("utf-8", "replace")


def init_bare(path: Path, default_branch: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    run(None, ["init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)])
    run(path, ["config", "http.receivepack", "true"])
    run(path, ["config", "uploadpack.allowReachableSHA1InWant", "true"])
    run(path, ["config", "receive.denyNonFastForwards", "false"])


def clone_bare(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    run(None, ["clone", "--quiet", "--bare", "--no-tags", "--", str(src), str(dst)])
    # copy tags too (clone --bare copies refs/heads/*; fetch tags explicitly)
    run(dst, ["fetch", "--quiet", "--", str(src), "+refs/tags/*:refs/tags/*"], check=False)
    run(dst, ["remote", "remove", "origin"], check=False)
    run(dst, ["config", "http.receivepack", "true"])
    run(dst, ["config", "uploadpack.allowReachableSHA1InWant", "true"])


def import_git(git_dir: Path, src: Path) -> None:
    """Every branch and tag of the git repository at ``src``, with their history, into the bare ``git_dir``
    (no hook runs: an import is not a push)."""
    run(git_dir, ["fetch", "--quiet", "--no-tags", "--", str(src), "+refs/heads/*:refs/heads/*"])
    run(git_dir, ["fetch", "--quiet", "--", str(src), "+refs/tags/*:refs/tags/*"])


def person_env(
    author: tuple[str, str], committer: tuple[str, str] | None = None, date: str | None = None
) -> dict[str, str]:
    committer = committer or author
    env = {
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": committer[0],
        "GIT_COMMITTER_EMAIL": committer[1],
    }
    if date:
        env["GIT_AUTHOR_DATE"] = date
        env["GIT_COMMITTER_DATE"] = date
    return env


def import_directory(
    git_dir: Path, src_dir: Path | None, branch: str, message: str, author: tuple[str, str], readme: str | None = None
) -> str:
    """Create the first commit of ``branch`` from the files in ``src_dir``."""
    tmp = tempfile.mkdtemp(prefix="forge-import-")
    try:
        work = Path(tmp) / "work"
        if src_dir is not None:
            shutil.copytree(src_dir, work, ignore=shutil.ignore_patterns(".git"), symlinks=True)
        else:
            work.mkdir()
            (work / "README.md").write_text(readme or "# repository\n")
        index = str(Path(tmp) / "index")
        env = {"GIT_INDEX_FILE": index, "GIT_WORK_TREE": str(work)}
        run(git_dir, ["add", "-A", "--force", "."], env=env, cwd=str(work))
        tree = out(git_dir, ["write-tree"], env=env).strip()
        sha = out(git_dir, ["commit-tree", tree, "-m", message], env=person_env(author)).strip()
        run(git_dir, ["update-ref", f"refs/heads/{branch}", sha, ZERO])
        return sha
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve(git_dir: Path, rev: str) -> str | None:
    """Resolve a validated sha / short sha / branch / full ref to a commit sha."""
    if not (valid_short_sha(rev) or valid_refname(rev) or valid_branch(rev)):
        return None
    candidates = [rev]
    if not rev.startswith("refs/") and not valid_sha(rev):
        candidates = [f"refs/heads/{rev}", f"refs/tags/{rev}", rev]
    for cand in candidates:
        p = run(git_dir, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{cand}^{{commit}}"], check=False)
        if p.returncode == 0:
            return p.stdout.decode().strip()
    return None


def list_refs(git_dir: Path, prefix: str = "refs/heads/") -> dict[str, str]:
    text = out(git_dir, ["for-each-ref", "--format=%(objectname) %(refname)", prefix])
    refs = {}
    for line in text.splitlines():
        sha, _, ref = line.partition(" ")
        if ref:
            refs[ref] = sha
    return refs


def ref_sha(git_dir: Path, ref: str) -> str | None:
    p = run(git_dir, ["rev-parse", "--verify", "--quiet", "--end-of-options", ref], check=False)
    return p.stdout.decode().strip() if p.returncode == 0 else None


_FMT = "%H%x1f%T%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B"


def commit_info(git_dir: Path, sha: str) -> dict:
    text = out(git_dir, ["show", "-s", f"--format={_FMT}", "--end-of-options", sha])
    parts = text.split("\x1f")
    message = parts[9].rstrip("\n")
    return {
        "sha": parts[0],
        "tree": parts[1],
        "parents": parts[2].split() if parts[2] else [],
        "author": {"name": parts[3], "email": parts[4], "date": parts[5]},
        "committer": {"name": parts[6], "email": parts[7], "date": parts[8]},
        "message": message,
    }


def changed_files(git_dir: Path, sha: str, parents: list[str]) -> list[dict]:
    """name-status + numstat of a commit against its first parent."""
    base = parents[0] if parents else None
    if base:
        ns = out(git_dir, ["diff-tree", "-r", "--no-renames", "--name-status", base, sha])
        num = out(git_dir, ["diff-tree", "-r", "--no-renames", "--numstat", base, sha])
    else:
        ns = out(git_dir, ["diff-tree", "-r", "--root", "--no-renames", "--no-commit-id", "--name-status", sha])
        num = out(git_dir, ["diff-tree", "-r", "--root", "--no-renames", "--no-commit-id", "--numstat", sha])
    stats = {}
    for line in num.splitlines():
        cols = line.split("\t")
        if len(cols) == 3:
            a = int(cols[0]) if cols[0].isdigit() else 0
            d = int(cols[1]) if cols[1].isdigit() else 0
            stats[cols[2]] = (a, d)
    files = []
    for line in ns.splitlines():
        cols = line.split("\t")
        if len(cols) != 2:
            continue
        status = {"A": "added", "D": "removed", "M": "modified", "T": "modified"}.get(cols[0][:1], "modified")
        a, d = stats.get(cols[1], (0, 0))
        files.append({"filename": cols[1], "status": status, "additions": a, "deletions": d})
    return files


def is_ancestor(git_dir: Path, a: str, b: str) -> bool:
    return run(git_dir, ["merge-base", "--is-ancestor", a, b], check=False).returncode == 0


def rev_list(git_dir: Path, include: str, exclude: list[str], limit: int = 100) -> list[str]:
    args = ["rev-list", "--reverse", include]
    if exclude:
        args.append("--not")
        args.extend(exclude)
    shas = out(git_dir, args).split()
    return shas[-limit:]


def count_commits(git_dir: Path, base: str, head: str) -> int:
    return int(out(git_dir, ["rev-list", "--count", f"{base}..{head}"]).strip() or 0)


def merge_tree(git_dir: Path, base: str, head: str) -> str | None:
    """Tree of a clean merge, or None on conflict."""
    p = run(git_dir, ["merge-tree", "--write-tree", "--no-messages", base, head], check=False)
    if p.returncode == 0:
        return p.stdout.decode().split()[0]
    if p.returncode == 1:
        return None
    stderr = p.stderr.decode("utf-8", "replace")
    raise GitError(f"git merge-tree failed ({p.returncode}): {stderr.strip()}", p.returncode, stderr)


def commit_tree(
    git_dir: Path,
    tree: str,
    parents: list[str],
    message: str,
    author: tuple[str, str],
    committer: tuple[str, str] | None = None,
) -> str:
    args = ["commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    args += ["-F", "-"]
    return out(git_dir, args, input=message.encode(), env=person_env(author, committer)).strip()


def update_ref(git_dir: Path, ref: str, new: str, old: str | None = None) -> None:
    args = ["update-ref", ref, new]
    if old is not None:
        args.append(old)
    run(git_dir, args)


def delete_ref(git_dir: Path, ref: str, old: str | None = None) -> None:
    args = ["update-ref", "-d", ref]
    if old is not None:
        args.append(old)
    run(git_dir, args)


def fetch_into(git_dir: Path, src: Path, src_ref: str, dst_ref: str) -> None:
    run(git_dir, ["fetch", "--quiet", "--no-tags", "--", str(src), f"+{src_ref}:{dst_ref}"])


def diff_text(git_dir: Path, base: str, head: str) -> str:
    mb = out(git_dir, ["merge-base", base, head], check=False).strip() or base
    return out(git_dir, ["diff", "--no-color", mb, head])


def diff_stats(git_dir: Path, base: str, head: str) -> dict:
    mb = out(git_dir, ["merge-base", base, head], check=False).strip() or base
    text = out(git_dir, ["diff", "--numstat", mb, head])
    add = dele = files = 0
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) == 3:
            files += 1
            add += int(cols[0]) if cols[0].isdigit() else 0
            dele += int(cols[1]) if cols[1].isdigit() else 0
    return {"additions": add, "deletions": dele, "changed_files": files, "commits": count_commits(git_dir, base, head)}


def to_utc_z(iso: str) -> str:
    try:
        dt = datetime.fromisoformat(iso)
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return iso


def diff_files(git_dir: Path, base: str, head: str) -> list[dict]:
    """Files changed between merge-base(base, head) and head, with patches."""
    mb = out(git_dir, ["merge-base", base, head], check=False).strip() or base
    ns = out(git_dir, ["diff", "--no-renames", "--name-status", mb, head])
    num = out(git_dir, ["diff", "--no-renames", "--numstat", mb, head])
    stats = {}
    for line in num.splitlines():
        cols = line.split("\t")
        if len(cols) == 3:
            stats[cols[2]] = (int(cols[0]) if cols[0].isdigit() else 0, int(cols[1]) if cols[1].isdigit() else 0)
    files = []
    for line in ns.splitlines():
        cols = line.split("\t")
        if len(cols) != 2:
            continue
        status = {"A": "added", "D": "removed"}.get(cols[0][:1], "modified")
        a, d = stats.get(cols[1], (0, 0))
        patch = out(git_dir, ["diff", "--no-color", "--no-renames", mb, head, "--", cols[1]], check=False)
        hunk = patch.find("\n@@")
        files.append(
            {
                "filename": cols[1],
                "status": status,
                "additions": a,
                "deletions": d,
                "patch": patch[hunk + 1 :] if hunk >= 0 else "",
            }
        )
    return files


def ls_tree(git_dir: Path, commit: str, path: str) -> list[dict]:
    """Entries of ``path`` (a file or a directory) at ``commit``: mode, type, sha, size, path."""
    spec = path.rstrip("/") + "/" if path else ""
    text = out(
        git_dir,
        ["ls-tree", "-l", "--full-tree", commit, "--", spec or "."]
        if spec
        else ["ls-tree", "-l", "--full-tree", commit],
    )
    entries = []
    for line in text.splitlines():
        meta, _, name = line.partition("\t")
        mode, typ, sha, size = meta.split()
        entries.append(
            {"mode": mode, "type": typ, "sha": sha, "size": int(size) if size.isdigit() else 0, "path": name}
        )
    if not entries and path:
        text = out(git_dir, ["ls-tree", "-l", "--full-tree", commit, "--", path])
        for line in text.splitlines():
            meta, _, name = line.partition("\t")
            mode, typ, sha, size = meta.split()
            entries.append(
                {
                    "mode": mode,
                    "type": typ,
                    "sha": sha,
                    "size": int(size) if size.isdigit() else 0,
                    "path": name,
                    "self": True,
                }
            )
    return entries


def cat_blob(git_dir: Path, sha: str) -> bytes:
    return run(git_dir, ["cat-file", "blob", sha]).stdout
