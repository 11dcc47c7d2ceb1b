"""Event and user reports. Docs: https://element-hq.github.io/synapse/latest/admin_api/event_reports.html

User reports (added in Synapse 1.152) are not in the docs; their shapes here come from
`synapse/rest/admin/user_reports.py`. Both lists page with an OFFSET (`from`/`next_token`) over
`ORDER BY received_ts`, newest first by default (`dir=b`), and count `total` in the same request.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.events import as_the_room_shows_it
from bot.homeserver.admin_api.models import Page, build, next_token
from bot.homeserver.admin_api.paths import ADMIN
from bot.records import record


@record
class EventReport:
    """A row of GET event_reports; the detail endpoint adds `event_json` (the reported event)."""

    id: int
    received_ts: int
    room_id: str
    event_id: str
    user_id: str  # the reporter
    reason: str | None = None
    score: int | None = None
    sender: str | None = None  # the reported event's sender; None when the server no longer has the event
    canonical_alias: str | None = None
    name: str | None = None  # the room's name
    event_json: dict[str, Any] = field(default_factory=dict)


@record
class UserReport:
    """A row of GET user_reports: a report about an account (undocumented, Synapse 1.152)."""

    id: int
    received_ts: int
    target_user_id: str  # the reported user
    user_id: str  # the reporter
    reason: str | None = None


@record
class RedactionStatus:
    """How the redaction of a reported event goes (GET user/redact_status/<redact_id>)."""

    status: str  # scheduled | active | complete | failed
    failed_redactions: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _score(value: Any) -> int | None:
    # `score` is whatever the reporting client sent (the spec asks for -100..0); keep only integers.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _event_report(data: dict[str, Any]) -> EventReport:
    return build(EventReport, data, score=_score(data.get("score")), event_json=data.get("event_json") or {},
                 reason=data.get("reason") if isinstance(data.get("reason"), str) else None)


class ReportsAPI(Area):
    async def list_event_reports(
        self,
        *,
        from_token: int | str | None = None,
        limit: int = 100,
        direction: str | None = None,
        reporter: str | None = None,
        room_id: str | None = None,
        reported_user: str | None = None,
    ) -> Page[EventReport]:
        """GET /_synapse/admin/v1/event_reports — newest first unless direction="f".

        `reporter` and `room_id` are substring (LIKE) filters on the server; `reported_user`
        (event_sender_user_id, 1.122) is exact.
        """
        data = await self._http.request(
            "GET",
            ADMIN.v1.event_reports,
            params={
                "from": from_token, "limit": limit, "dir": direction, "user_id": reporter, "room_id": room_id,
                "event_sender_user_id": reported_user,
            },
        )
        reports = [_event_report(r) for r in data.get("event_reports", [])]
        return Page(reports, data.get("total"), next_token(data))

    async def event_report(self, report_id: int) -> EventReport:
        """GET /_synapse/admin/v1/event_reports/<report_id> — with `event_json`.

        NotFound also when the reported event itself is gone (the query joins event_json). Synapse
        serves the event as it was stored, even after a redaction: a redacted one comes without its
        content (bot/homeserver/admin_api/events.py).
        """
        report = _event_report(await self._http.request("GET", ADMIN.v1.event_reports[str(int(report_id))]))
        if not report.event_json:
            return report
        event = {"room_id": report.room_id, "event_id": report.event_id, **report.event_json}
        return replace(report, event_json=await as_the_room_shows_it(self._http, event))

    async def delete_event_report(self, report_id: int) -> None:
        """DELETE /_synapse/admin/v1/event_reports/<report_id> — the report only, not the event."""
        await self._http.request("DELETE", ADMIN.v1.event_reports[str(int(report_id))])

    async def list_user_reports(
        self,
        *,
        from_token: int | str | None = None,
        limit: int = 100,
        direction: str | None = None,
        reporter: str | None = None,
        target_user_id: str | None = None,
    ) -> Page[UserReport]:
        """GET /_synapse/admin/v1/user_reports (undocumented, 1.152) — newest first unless direction="f".

        Both user filters are substring (LIKE) matches on the server.
        """
        data = await self._http.request(
            "GET",
            ADMIN.v1.user_reports,
            params={
                "from": from_token, "limit": limit, "dir": direction, "user_id": reporter,
                "target_user_id": target_user_id,
            },
        )
        reports = [build(UserReport, r) for r in data.get("user_reports", [])]
        return Page(reports, data.get("total"), next_token(data))

    async def user_report(self, report_id: int) -> UserReport:
        """GET /_synapse/admin/v1/user_reports/<report_id> (undocumented, 1.152)"""
        return build(UserReport, await self._http.request("GET", ADMIN.v1.user_reports[str(int(report_id))]))

    async def delete_user_report(self, report_id: int) -> None:
        """DELETE /_synapse/admin/v1/user_reports/<report_id> (undocumented, 1.152); NotFound if missing."""
        await self._http.request("DELETE", ADMIN.v1.user_reports[str(int(report_id))])

    # The single-event redaction behind `report redact`. There is no Admin API endpoint that redacts
    # one event; "redact a user's events" limited to one room and to the event's own millisecond
    # is the closest. It puppets a local sender, so it works without the bot being in the room.
    async def start_reported_event_redaction(
        self, sender: str, *, room_id: str, origin_server_ts: int, reason: str | None = None
    ) -> str:
        """POST /_synapse/admin/v1/user/<user_id>/redact with rooms=[room], after_ts = before_ts = the
        event's timestamp (both inclusive, 1.157); returns the redact_id."""
        body: dict[str, Any] = {
            "rooms": [room_id], "after_ts": origin_server_ts, "before_ts": origin_server_ts, "limit": 10,
        }
        if reason:
            body["reason"] = reason
        data = await self._http.request("POST", ADMIN.v1.user[sender].redact, json=body)
        return str(data["redact_id"])

    async def reported_event_redaction_status(self, redact_id: str) -> RedactionStatus:
        """GET /_synapse/admin/v1/user/redact_status/<redact_id> ("complete", not "completed" as the docs say)."""
        data = await self._http.request("GET", ADMIN.v1.user.redact_status[redact_id])
        return RedactionStatus(
            status=str(data.get("status", "")),
            failed_redactions={str(k): str(v) for k, v in (data.get("failed_redactions") or {}).items()},
            error=data.get("error"),
        )
