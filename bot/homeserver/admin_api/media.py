"""Media repository: media details, quarantine, protection, deletion, purges.
Docs: https://element-hq.github.io/synapse/latest/admin_api/media_admin_api.html

Most of these endpoints are served only by the process running the media repository (the main
process unless `enable_media_repo` is off there): point `homeserver.admin_api_url` accordingly.
"""

from __future__ import annotations

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.models import build
from bot.homeserver.admin_api.paths import ADMIN
from bot.records import record


@record
class LocalMedia:
    """A file in the local media repository (times in milliseconds)."""

    media_id: str
    media_type: str | None = None
    media_length: int | None = None
    upload_name: str | None = None
    created_ts: int | None = None
    last_access_ts: int | None = None
    quarantined_by: str | None = None
    safe_from_quarantine: bool = False
    user_id: str | None = None
    url_cache: str | None = None
    authenticated: bool | None = None
    sha256: str | None = None


@record
class MediaInfo:
    """GET media/<server_name>/<media_id>: local media (user_id set) or cached remote media (media_origin set)."""

    media_id: str
    media_origin: str | None = None
    user_id: str | None = None
    media_type: str | None = None
    media_length: int | None = None
    upload_name: str | None = None
    created_ts: int | None = None
    last_access_ts: int | None = None
    quarantined_by: str | None = None
    safe_from_quarantine: bool | None = None
    authenticated: bool | None = None
    sha256: str | None = None


@record
class QuarantineChange:
    """A file quarantined or released, from GET media/quarantine_changes."""

    origin: str
    media_id: str
    quarantined: bool


class MediaAPI(Area):
    async def media_info(self, server_name: str, media_id: str) -> MediaInfo:
        """GET /_synapse/admin/v1/media/<server_name>/<media_id> (NotFound for unknown or uncached media)"""
        data = await self._http.request("GET", ADMIN.v1.media[server_name][media_id])
        return build(MediaInfo, data.get("media_info") or {})

    async def quarantine_media(self, server_name: str, media_id: str) -> None:
        """POST /_synapse/admin/v1/media/quarantine/<server_name>/<media_id> (also same-hash copies since 1.128)"""
        await self._http.request("POST", ADMIN.v1.media.quarantine[server_name][media_id], json={})

    async def unquarantine_media(self, server_name: str, media_id: str) -> None:
        """POST /_synapse/admin/v1/media/unquarantine/<server_name>/<media_id>"""
        await self._http.request("POST", ADMIN.v1.media.unquarantine[server_name][media_id], json={})

    async def quarantine_user_media(self, user_id: str) -> int:
        """POST /_synapse/admin/v1/user/<user_id>/media/quarantine → number quarantined"""
        data = await self._http.request("POST", ADMIN.v1.user[user_id].media.quarantine, json={})
        return int(data.get("num_quarantined", 0))

    async def protect_media(self, media_id: str) -> None:
        """POST /_synapse/admin/v1/media/protect/<media_id> (local media only)"""
        await self._http.request("POST", ADMIN.v1.media.protect[media_id], json={})

    async def unprotect_media(self, media_id: str) -> None:
        """POST /_synapse/admin/v1/media/unprotect/<media_id>"""
        await self._http.request("POST", ADMIN.v1.media.unprotect[media_id], json={})

    async def delete_media(self, server_name: str, media_id: str) -> list[str]:
        """DELETE /_synapse/admin/v1/media/<server_name>/<media_id> (local media only) → deleted IDs"""
        data = await self._http.request("DELETE", ADMIN.v1.media[server_name][media_id])
        return [str(m) for m in data.get("deleted_media", [])]

    async def delete_media_before(self, *, before_ts: int, size_gt: int | None = None, keep_profiles: bool = True) -> list[str]:
        """POST /_synapse/admin/v1/media/delete — local media last accessed before `before_ts`."""
        data = await self._http.request(
            "POST", ADMIN.v1.media.delete,
            params={"before_ts": before_ts, "size_gt": size_gt, "keep_profiles": keep_profiles}, timeout=3600,
        )
        return [str(m) for m in data.get("deleted_media", [])]

    async def delete_media_before_legacy(
        self, server_name: str, *, before_ts: int, size_gt: int | None = None, keep_profiles: bool = True,
    ) -> list[str]:
        """POST /_synapse/admin/v1/media/<server_name>/delete — the same, on homeservers older than 1.78."""
        data = await self._http.request(
            "POST", ADMIN.v1.media[server_name].delete,
            params={"before_ts": before_ts, "size_gt": size_gt, "keep_profiles": keep_profiles}, timeout=3600,
        )
        return [str(m) for m in data.get("deleted_media", [])]

    async def purge_remote_media_cache(self, *, before_ts: int) -> int:
        """POST /_synapse/admin/v1/purge_media_cache — cached remote media last accessed before `before_ts`."""
        data = await self._http.request("POST", ADMIN.v1.purge_media_cache, params={"before_ts": before_ts}, timeout=3600)
        return int(data.get("deleted", 0))

    async def quarantine_changes(self, *, from_token: str | None = None) -> tuple[list[QuarantineChange], str]:
        """GET /_synapse/admin/v1/media/quarantine_changes → (changes, next_batch); oldest first, 100 at most."""
        data = await self._http.request("GET", ADMIN.v1.media.quarantine_changes, params={"from": from_token})
        changes = [build(QuarantineChange, c) for c in data.get("changes", [])]
        return changes, str(data.get("next_batch", from_token or 0))
