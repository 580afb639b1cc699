"""The post-receive hook installed in every bare repo: it reports ref updates to the running forge."""

HOOK_SH = """#!/bin/sh
# sandbox forge: report ref updates to the forge (generated, do not edit)
exec {python} "$(dirname "$0")/forge_post_receive.py"
"""

HOOK_PY = r"""# sandbox forge post-receive reporter (generated; stdlib only)
import json
import os
import sys
import urllib.request

FORGE_URL = __FORGE_URL__
REPO = __REPO__
TOKEN = __TOKEN__


def main():
    updates = []
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 3:
            updates.append({"old": parts[0], "new": parts[1], "ref": parts[2]})
    if not updates:
        return 0
    pusher = os.environ.get("REMOTE_USER") or os.environ.get("GIT_PUSHER") or ""
    body = json.dumps({"repo": REPO, "pusher": pusher, "updates": updates}).encode()
    req = urllib.request.Request(FORGE_URL + "/sandbox/internal/post-receive", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Sandbox-Hook-Token": TOKEN})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as resp:
            resp.read()
    except Exception as exc:
        sys.stderr.write("sandbox forge: could not report push: %s\n" % exc)
    return 0


sys.exit(main())
"""
