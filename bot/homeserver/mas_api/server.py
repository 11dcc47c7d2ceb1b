"""What MAS says about itself, and its OAuth 2.0 clients (read only).
Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/server"""

from __future__ import annotations

from typing import Any

from bot.homeserver.mas_api.base import Area, paging
from bot.homeserver.mas_api.errors import NotFound
from bot.homeserver.mas_api.models import OAuth2Client, Page, SiteConfig, page, single
from bot.homeserver.mas_api.paths import V1, ulid


class ServerAPI(Area):
    async def version(self) -> str:
        """GET /api/admin/v1/version (version).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/server/version
        """
        return str((await self._http.request("GET", V1.version))["version"])

    async def site_config(self) -> SiteConfig:
        """GET /api/admin/v1/site-config (siteConfig).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/server/siteConfig
        """
        return SiteConfig.from_json(await self._http.request("GET", V1.site_config))

    async def latest_policy_data(self) -> dict[str, Any]:
        """GET /api/admin/v1/policy-data/latest (getLatestPolicyData) — the policy data set through the
        admin API (read only: who is a MAS admin by `admin_users`); {} when none was ever set.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/policy-data/getLatestPolicyData
        """
        try:
            body = await self._http.request("GET", V1.policy_data.latest)
        except NotFound:
            return {}  # none set (or a MAS from before this endpoint: none can have been set through it)
        data = ((body.get("data") or {}).get("attributes") or {}).get("data")
        return data if isinstance(data, dict) else {}


class OAuth2ClientsAPI(Area):
    """Read only: names for the client IDs that sessions show. Managing clients is MAS configuration."""

    async def list_oauth2_clients(
        self, *, first: int | None = None, after: str | None = None, count: bool | None = None,
    ) -> Page[OAuth2Client]:
        """GET /api/admin/v1/oauth2-clients (listOAuth2Clients).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/oauth2-client/listOAuth2Clients
        """
        params = paging(first=first, after=after, count=count)
        return page(OAuth2Client, await self._http.request("GET", V1.oauth2_clients, params=params))

    async def get_oauth2_client(self, client_id: str) -> OAuth2Client:
        """GET /api/admin/v1/oauth2-clients/{id} (getOAuth2Client).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/oauth2-client/getOAuth2Client
        """
        return single(OAuth2Client, await self._http.request("GET", V1.oauth2_clients[ulid(client_id)]))
