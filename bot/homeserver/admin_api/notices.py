"""Server notices. Docs: https://element-hq.github.io/synapse/latest/admin_api/server_notices.html"""

from __future__ import annotations

from typing import Any

from bot.homeserver.admin_api.base import Area
from bot.homeserver.admin_api.paths import ADMIN


class ServerNoticesAPI(Area):
    async def send_server_notice(self, user_id: str, content: dict[str, Any], *, txn_id: str) -> str:
        """PUT /_synapse/admin/v1/send_server_notice/<txn_id> — idempotent: a retry with the same
        txn_id does not send twice. 400 'Server notices are not enabled' without server_notices config."""
        data = await self._http.request(
            "PUT", ADMIN.v1.send_server_notice[txn_id], json={"user_id": user_id, "content": content}
        )
        return str(data["event_id"])
