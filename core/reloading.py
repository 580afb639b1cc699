"""config.toml read again when it changes, without a restart: the next delivery or task sees the new file.

A file that no longer validates is refused: logged once (`config.refused`, with every problem), and the last
good settings stay in force until it is fixed. The file's modification time is looked at most once a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from core.config import ConfigError, Settings, load_config
from core.logs import get_logger

log = get_logger("core.reloading")
CHECK_EVERY_SECONDS = 1.0


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("MLOPS_BOT_CONFIG", "config.toml"))


class ReloadingConfig:
    """The settings of one file; `current()` re-reads it when its modification time changed."""

    def __init__(self, path: str | os.PathLike[str] | None = None, clock: Callable[[], float] = time.monotonic):
        self.path, self.clock = config_path(path), clock
        self._stamp = self._stamp_now()
        self._settings = load_config(self.path)  # the first read fails loudly: nothing to fall back on
        self._checked = clock()
        self._refused_stamp: tuple[int, int] | None = None

    def _stamp_now(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> Settings:
        now = self.clock()
        if now - self._checked < CHECK_EVERY_SECONDS:
            return self._settings
        self._checked = now
        stamp = self._stamp_now()
        if stamp == self._stamp or stamp == self._refused_stamp:
            return self._settings
        try:
            settings = load_config(self.path)
        except ConfigError as exc:
            self._refused_stamp = stamp
            log.error("config.refused", path=str(self.path), problems=str(exc)[:2000], kept="the last good settings")
            return self._settings
        self._settings, self._stamp, self._refused_stamp = settings, stamp, None
        log.info("config.reloaded", path=str(self.path))
        return settings
