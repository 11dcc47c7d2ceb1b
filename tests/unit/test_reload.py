"""What a SIGHUP applies live and what it names as needing a restart (bot/app.py: App.reload)."""

from __future__ import annotations

from pathlib import Path

from bot.config import live_changes, parse, restart_needed

BASE = {
    "homeserver": {"url": "http://127.0.0.1:8008"},
    "bot": {"user_id": "@bot:hs.test", "access_token": "syt_secret_value"},
    "admin_rooms": ["!a:hs.test"],
    "access": {"admins": ["@root:hs.test"], "moderators": ["@mod:hs.test"]},
    "reports": {"poll_interval": 2},
}


def changed(**sections: object) -> dict:
    return {**BASE, **sections}


def test_access_rooms_and_report_timings_are_live_and_everything_else_needs_a_restart(tmp_path: Path) -> None:
    old = parse(BASE, base_dir=tmp_path, environ={})
    new_raw = changed(access={"admins": ["@root:hs.test"], "viewers": ["@new:hs.test"]},
                      admin_rooms=["!a:hs.test", "#team:hs.test"],
                      reports={"poll_interval": 5, "reminder_after": "1h", "enabled": False},
                      bot={"user_id": "@bot:hs.test", "access_token": "syt_other_secret"},
                      metrics={"bind": "127.0.0.1:9464"})
    new = parse(new_raw, base_dir=tmp_path, environ={})
    assert live_changes(old, new) == [
        "access.moderators: -@mod:hs.test", "access.viewers: +@new:hs.test", "admin_rooms: +#team:hs.test",
        "reports.poll_interval: 2 s → 5 s", "reports.reminder_after: 14400 s → 3600 s",
        "reports.reminder_every: 14400 s → 3600 s"]
    assert restart_needed(BASE, new_raw) == ["bot.access_token", "metrics.bind", "reports.enabled"]
    assert restart_needed(BASE, BASE) == [] and live_changes(old, old) == []
    assert "syt_" not in " ".join(live_changes(old, new) + restart_needed(BASE, new_raw))
