"""config.toml edited while the bot runs (core/reloading.py): the next read sees it; a broken edit is refused,
logged, and the last good settings kept."""

from __future__ import annotations

import os

from core.reloading import CHECK_EVERY_SECONDS, ReloadingConfig
from tests.support.configs import ROOT


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))  # a distinct modification time, whatever the filesystem's resolution


def test_an_edited_file_is_read_by_the_next_task_and_a_broken_one_is_refused(tmp_path, caplog):
    path, clock = tmp_path / "config.toml", Clock()
    original = (ROOT / "config.toml").read_text()
    write(path, original, 1_000_000_000)
    config = ReloadingConfig(path, clock)
    first = config.current()
    assert first.bot.job_ttl_days == 30

    write(path, original.replace("job_ttl_days = 30", "job_ttl_days = 7"), 2_000_000_000)
    assert config.current() is first  # looked at most once a second
    clock.now += CHECK_EVERY_SECONDS
    edited = config.current()
    assert edited.bot.job_ttl_days == 7

    write(path, original.replace("job_ttl_days = 30", "job_ttl_days = -1"), 3_000_000_000)
    clock.now += CHECK_EVERY_SECONDS
    assert config.current() is edited  # the last good one stays in force
    clock.now += CHECK_EVERY_SECONDS
    assert config.current() is edited
    refusals = [r for r in caplog.records if r.getMessage() == "config.refused"]
    assert len(refusals) == 1 and "bot.job_ttl_days" in refusals[0].fields["problems"]  # once, naming the key

    write(path, original, 4_000_000_000)
    clock.now += CHECK_EVERY_SECONDS
    assert config.current().bot.job_ttl_days == 30  # fixed: read again
