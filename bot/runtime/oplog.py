"""The operator's log: the lines an operator runs the bot by, at INFO.

One line when the bot is ready, one per command (sender, the command as audited — its secrets
left out —, outcome, audit entry, time taken), one per refusal with its reason, one on a reload
and one on stop. Each is a plain sentence for the human format and carries the same facts as
fields (`extra={"fields": …}`), which the JSON format writes as keys of its own
(bot/logs.py). Nothing here formats a token: the command text is the audit log's, already made
safe (secrets hidden, outside text clipped to one line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from bot.text import untrusted

log = logging.getLogger("bot.ops")

ARGS_LIMIT = 200


def command(*, sender: str, room_id: str, command: str, args: str, result: str, detail: str,
            audit_id: int | None, seconds: float | None) -> None:
    """The outcome of one command, as its audit row says it: called once per audit row the
    command path writes. A refusal gets the refusal line, with its reason, instead."""
    # A refusal before any command was parsed is audited as "(refused)": the line says "refused" already.
    named = "" if command == "(refused)" else command
    shown = untrusted.inline(" ".join(part for part in (named, args) if part), ARGS_LIMIT)
    took = f"{seconds:.2f} s" if seconds is not None else "?"
    entry = f"#{audit_id}" if audit_id is not None else "not written"
    fields: dict[str, Any] = {
        "event": "refused" if result == "refused" else "command", "sender": sender, "room_id": room_id,
        "command": shown, "result": result, "audit_id": audit_id,
        "seconds": round(seconds, 3) if seconds is not None else None,
    }
    if result == "refused":
        reason = untrusted.inline(detail or "no reason recorded", ARGS_LIMIT)
        fields["reason"] = reason
        log.info("refused %s: %s — %s (audit %s, %s)", sender, shown, reason, entry, took, extra={"fields": fields})
        return
    if detail:
        fields["detail"] = untrusted.inline(detail, ARGS_LIMIT)
    log.info("command %s: %s → %s%s (audit %s, %s)", sender, shown, result,
             f" ({fields['detail']})" if detail else "", entry, took, extra={"fields": fields})


def ready(*, user_id: str, device_id: str, rooms: Iterable[str], joined: Iterable[str], reports: bool,
          jobs: int, seconds: float) -> None:
    """Synced, in its admin rooms, the report inbox started: the bot answers from now on."""
    rooms, joined = sorted(rooms), set(joined)
    missing = [room for room in rooms if room not in joined]
    fields = {"event": "ready", "user_id": user_id, "device_id": device_id, "admin_rooms": rooms,
              "admin_rooms_not_joined": missing, "report_inbox": "started" if reports else "off",
              "jobs_resumed": jobs, "seconds": round(seconds, 3)}
    where = f"in {len(rooms) - len(missing)} of {len(rooms)} admin room(s) ({', '.join(rooms) or 'none'})"
    if missing:
        where += f"; not joined yet: {', '.join(missing)}"
    log.info("ready: %s (device %s) synced, %s, report inbox %s, %d job(s) resumed; started in %.1f s",
             user_id, device_id, where, fields["report_inbox"], jobs, seconds, extra={"fields": fields})


def stopped(*, reason: str, seconds: float) -> None:
    fields = {"event": "stopped", "reason": reason, "uptime_seconds": round(seconds, 1)}
    log.info("stopped (%s) after %.0f s", reason, seconds, extra={"fields": fields})


def reloaded(*, changes: list[str], needs_restart: list[str]) -> None:
    fields = {"event": "reloaded", "changes": changes, "needs_restart": needs_restart}
    said = "; ".join(changes) if changes else "nothing to apply"
    log.info("reloaded the config: %s", said, extra={"fields": fields})
    for key in needs_restart:
        log.warning("reload: %s changed, which needs a restart to take effect", key,
                    extra={"fields": {"event": "needs_restart", "key": key}})
