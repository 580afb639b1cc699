"""Webhook deliveries and what a ref update sets off: push/create/delete events, PR sync and merge."""

from __future__ import annotations

import json

from . import gitops
from .gitops import ZERO
from .vocabulary import ApiError, node_id, now_iso
from .webhooks import Dispatcher, wire_body


def hook_target(hook, hook_id: int, kind: str, target_id: int, app: dict | None = None) -> dict:
    return {
        "hook": hook,
        "hook_id": hook_id,
        "type": kind,
        "target_id": target_id,
        "app_id": app["id"] if app else None,
        "installation_id": app["installation_id"] if app else None,
    }


class ForgeEvents:
    """Part of Forge (mixed in): needs its state, lock and lookups."""

    def emit(self, rec: dict, event: str, payload: dict, sender: str | None) -> None:
        """Deliver `event` to the repository's webhook and to the webhook of every App installed on it."""
        with self.lock:
            targets = [t for t in self._hook_targets(rec) if event in t["hook"].events or "*" in t["hook"].events]
            if not targets:
                return
            body = dict(payload)
            body.setdefault("repository", self.repo_json(rec))
            body["sender"] = self.user_json(sender or rec["owner"])
            inst = self.installation_json()
            if inst:
                body["installation"] = inst
            if self.user_type(rec["owner"]) == "Organization":
                body["organization"] = self.org_json(rec["owner"])
            for target in targets:
                if target["installation_id"] is not None:  # an App's own installation, as its webhook receives it
                    body["installation"] = {
                        "id": target["installation_id"],
                        "node_id": node_id("Installation", target["installation_id"]),
                    }
                self._send(rec, target, event, body)
            self.save_soon()

    def _hook_targets(self, rec: dict) -> list[dict]:
        """Where an event of repository `rec` goes: its own webhook (target `repository`), and the webhook of each
        App installed on it (Apps are installed on every seeded repository; target `integration`, the App's id)."""
        found = []
        hook = self.webhooks.get(rec["full_name"])
        if hook is not None:
            found.append(hook_target(hook, rec["hook_id"], "repository", rec["id"]))
        for app in self.apps.values() if rec.get("seeded") else ():
            if app.get("webhook") is not None:
                found.append(hook_target(app["webhook"], app["hook_id"], "integration", app["id"], app))
        return found

    def _send(self, rec: dict, target: dict, event: str, body: dict) -> None:
        hook = target["hook"]
        raw = json.dumps(body).encode()
        wire = wire_body(raw, hook.content_type)
        built = Dispatcher.build(
            target["hook_id"], target["target_id"], hook.url, hook.secret, event, wire,
            content_type=hook.content_type, target_type=target["type"],
        )  # fmt: skip
        record = {
            "id": self.next_id("delivery"),
            **built,
            "event": event,
            "action": body.get("action"),
            "repository": rec["full_name"],
            "repository_id": rec["id"],
            "hook_id": target["hook_id"],
            "app_id": target["app_id"],
            "installation_id": target["installation_id"],
            "status": "pending",
            "status_code": None,
            "response_body": None,
            "duration_ms": None,
            "delivered_at": None,
            "redelivery": False,
            "duplicate": False,
            "throttled_at": None,
            "created_at": now_iso(),
            "payload": raw.decode(),
            "content_type": hook.content_type,
        }
        self.state["deliveries"].append(record)
        self.dispatcher.enqueue(record, wire)

    def redeliver(self, guid: str) -> dict:
        """Deliver the first delivery of `guid` again (the webhook page's Redeliver)."""
        with self.lock:
            orig = next((d for d in self.state["deliveries"] if d["guid"] == guid), None)
            if orig is None:
                raise ApiError(404, "Not Found")
            return self.redeliver_record(orig)

    def redeliver_record(self, orig: dict) -> dict:
        """A new delivery with the same guid, headers and payload, marked `redelivery`, to the hook's current URL."""
        with self.lock:
            raw = wire_body(orig["payload"].encode(), orig.get("content_type", "json"))
            app = self.apps.get(orig["app_id"]) if orig.get("app_id") is not None else None
            hook = app["webhook"] if app else self.webhooks.get(orig["repository"])
            url = hook.url if hook else orig["url"]
            record = {
                **orig,
                "id": self.next_id("delivery"),
                "url": url,
                "request_headers": dict(orig["request_headers"]),
                "status": "pending",
                "status_code": None,
                "response_body": None,
                "duration_ms": None,
                "delivered_at": None,
                "redelivery": True,
                "created_at": now_iso(),
            }
            self.state["deliveries"].append(record)
            self.save_soon()
            self.dispatcher.enqueue(record, raw)
            return record

    def _delivery_done(self, record: dict, result: dict) -> None:
        with self.lock:
            record.update(result)
            self.save_soon()

    # ------------------------------------------------------------------ git events
    def push_commit_json(self, rec: dict, sha: str) -> dict:
        path = self.repo_path(rec)
        info = gitops.commit_info(path, sha)
        files = gitops.changed_files(path, sha, info["parents"])

        def person(p):
            d = {"name": p["name"], "email": p["email"]}
            login = self.login_for_person(p["name"], p["email"])
            if login:
                d["username"] = login
            return d

        return {
            "id": sha,
            "tree_id": info["tree"],
            "distinct": True,
            "message": info["message"],
            "timestamp": info["committer"]["date"],
            "url": f"{self.base}/{rec['full_name']}/commit/{sha}",
            "author": person(info["author"]),
            "committer": person(info["committer"]),
            "added": [f["filename"] for f in files if f["status"] == "added"],
            "removed": [f["filename"] for f in files if f["status"] == "removed"],
            "modified": [f["filename"] for f in files if f["status"] == "modified"],
        }

    def process_ref_updates(self, rec: dict, updates: list[tuple[str, str, str]], pusher: str | None) -> None:
        """Fire push/create/delete webhooks and update PRs after refs changed in ``rec``'s bare repo."""
        with self.lock:
            pusher = pusher if pusher and self.user_exists(pusher) else rec["owner"]
            path = self.repo_path(rec)
            for old, new, ref in updates:
                if not (gitops.valid_refname(ref) and (gitops.valid_sha(old) and gitops.valid_sha(new))):
                    continue
                if not (ref.startswith("refs/heads/") or ref.startswith("refs/tags/")):
                    continue
                created, deleted = old == ZERO, new == ZERO
                short = ref.split("/", 2)[2]
                ref_type = "branch" if ref.startswith("refs/heads/") else "tag"
                commits, head = [], None
                forced = False
                if not deleted:
                    if created:
                        others = [s for r, s in gitops.list_refs(path).items() if r != ref]
                        shas = gitops.rev_list(path, new, others, limit=20)
                    else:
                        forced = not gitops.is_ancestor(path, old, new)
                        shas = gitops.rev_list(path, new, [old], limit=20)
                    commits = [self.push_commit_json(rec, s) for s in shas]
                    head = commits[-1] if commits and commits[-1]["id"] == new else self.push_commit_json(rec, new)
                rec["pushed_at"] = now_iso()
                compare = (
                    f"{self.base}/{rec['full_name']}/compare/{short}"
                    if created
                    else f"{self.base}/{rec['full_name']}/compare/{old[:12]}...{new[:12]}"
                )
                self.emit(
                    rec,
                    "push",
                    {
                        "ref": ref,
                        "before": old,
                        "after": new,
                        "repository": self.repo_json(rec, push_style=True),
                        "pusher": {"name": pusher, "email": self.user_email(pusher)},
                        "created": created,
                        "deleted": deleted,
                        "forced": forced,
                        "base_ref": None,
                        "compare": compare,
                        "commits": commits,
                        "head_commit": head,
                    },
                    pusher,
                )
                if created:
                    self.emit(
                        rec,
                        "create",
                        {
                            "ref": short,
                            "ref_type": ref_type,
                            "master_branch": rec["default_branch"],
                            "description": rec.get("description"),
                            "pusher_type": "user",
                        },
                        pusher,
                    )
                if deleted:
                    self.emit(rec, "delete", {"ref": short, "ref_type": ref_type, "pusher_type": "user"}, pusher)
                if ref_type == "branch":
                    self._sync_prs(rec, short, old, new, pusher)
            self.save_soon()

    def _sync_prs(self, rec: dict, branch: str, old: str, new: str, pusher: str) -> None:
        deleted = new == ZERO
        for base_rec in list(self.state["repos"].values()):
            base_path = self.repo_path(base_rec)
            for pr in base_rec["issues"].values():
                if pr.get("kind") != "pr" or pr["state"] != "open":
                    continue
                if pr["head_repo"] == rec["full_name"] and pr["head_ref"] == branch:
                    if deleted:
                        self.close_pr(base_rec, pr, pusher)
                        continue
                    if new != pr["head_sha"]:
                        before = pr["head_sha"]
                        self._store_pr_head(base_rec, pr, rec, new)
                        pr["head_sha"] = new
                        pr["updated_at"] = now_iso()
                        self.emit(
                            base_rec,
                            "pull_request",
                            {
                                "action": "synchronize",
                                "number": pr["number"],
                                "before": before,
                                "after": new,
                                "pull_request": self.pr_json(base_rec, pr),
                            },
                            pusher,
                        )
                if base_rec is rec and pr["base_ref"] == branch and pr["state"] == "open":
                    if deleted:
                        self.close_pr(base_rec, pr, pusher)
                    elif gitops.is_ancestor(base_path, pr["head_sha"], new):
                        # head reachable from base: GitHub marks the PR as merged
                        self.mark_merged(pr, pusher, new, old if old != ZERO else new)
                        self.emit_closed(base_rec, pr, pusher)

    def _store_pr_head(self, base_rec: dict, pr: dict, head_rec: dict, sha: str) -> None:
        path = self.repo_path(base_rec)
        dst = f"refs/pull/{pr['number']}/head"
        if head_rec is base_rec:
            gitops.update_ref(path, dst, sha)
        else:
            gitops.fetch_into(path, self.repo_path(head_rec), sha, dst)

    def close_pr(self, rec: dict, pr: dict, actor: str) -> None:
        ts = now_iso()
        pr["base_sha"] = gitops.ref_sha(self.repo_path(rec), f"refs/heads/{pr['base_ref']}") or pr.get("base_sha")
        pr.update(state="closed", closed_at=ts, updated_at=ts, closed_by=actor, merged=False)
        self.emit_closed(rec, pr, actor)

    def mark_merged(self, pr: dict, actor: str, merge_sha: str, base_sha: str) -> None:
        ts = now_iso()
        pr.update(state="closed", merged=True, merged_at=ts, closed_at=ts, updated_at=ts)
        pr.update(merged_by=actor, closed_by=actor, merge_commit_sha=merge_sha, base_sha=base_sha)

    def emit_closed(self, rec: dict, pr: dict, actor: str) -> None:
        payload = {"action": "closed", "number": pr["number"], "pull_request": self.pr_json(rec, pr)}
        self.emit(rec, "pull_request", payload, actor)
