"""Media repository: media details, quarantine, protection, deletion, purges.
Docs: https://element-hq.github.io/synapse/latest/admin_api/media_admin_api.html"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Area


@dataclass(frozen=True)
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


class MediaAPI(Area):
    pass
