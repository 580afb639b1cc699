"""State kept in memory and persisted as one JSON file in the data directory."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


class JsonStore:
    """Subclasses say what the document is (`document`); this class writes it atomically.

    `save` writes at once: what an API call changed survives a crash right after it answered — unless
    `save_every` (seconds) is set, when `save` too is written within that time (a server holding tens of
    thousands of jobs, for a benchmark: rewriting the whole file per API write made it quadratic).
    `save_soon` lets a background thread write within SAVE_EVERY, for changes nobody is waiting on.
    """

    SAVE_EVERY = 0.2  # seconds: rewriting the whole file on every background change made busy servers slow

    def __init__(self, data_dir: str | os.PathLike, name: str = "state.json"):
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / name
        self.lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._dirty = threading.Event()
        self._version = self._written = 0
        self._saver: threading.Thread | None = None
        self.save_every = 0.0  # > 0: `save` waits up to this long too (a crash may lose that much)

    def document(self) -> dict:
        raise NotImplementedError

    def read(self) -> dict:
        """The saved document, or {} before the first save."""
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self) -> None:
        if self.save_every > 0:
            self.save_soon()
            return
        with self.lock:
            self._dirty.set()
            self.flush()

    def save_soon(self) -> None:
        with self.lock:
            self._dirty.set()
            if self._saver is None:
                self._saver = threading.Thread(target=self._save_loop, name="state-saver", daemon=True)
                self._saver.start()

    def flush(self) -> None:
        """Write the document now if it changed."""
        with self.lock:
            if not self._dirty.is_set():
                return
            self._dirty.clear()
            self._version += 1
            version, text = self._version, json.dumps(self.document(), indent=1)
        # Written outside `lock` so requests go on meanwhile; the version keeps an older text from landing last.
        with self._write_lock:
            if version > self._written:
                tmp = self.path.with_suffix(".json.tmp")
                tmp.write_text(text)
                os.replace(tmp, self.path)
                self._written = version

    def _save_loop(self) -> None:
        while True:
            self._dirty.wait()
            time.sleep(max(self.SAVE_EVERY, self.save_every))
            try:
                self.flush()
            except OSError as exc:  # keep serving even if the disk is unhappy
                sys.stderr.write(f"sandbox: could not save {self.path}: {exc}\n")
                time.sleep(1)


class DictStore(JsonStore):
    """A store whose document is one dict, `state`, starting from `defaults` and updated from the saved file."""

    def __init__(self, data_dir: str | os.PathLike, defaults: dict):
        super().__init__(data_dir)
        self.state = {**defaults, **self.read()}

    def document(self) -> dict:
        return self.state
