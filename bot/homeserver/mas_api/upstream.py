"""Upstream OAuth 2.0 (single sign-on) providers and the links of MAS users to their accounts there.

Under MAS these replace Synapse's external IDs: removing one provider's links from every user is
`walk(list_upstream_oauth_links(provider=…))` + `delete_upstream_oauth_link` for each.
Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/upstream-oauth-link
"""

from __future__ import annotations

from typing import Any

from bot.homeserver.mas_api.base import Area, paging
from bot.homeserver.mas_api.models import Page, UpstreamOAuthLink, UpstreamOAuthProvider, page, single
from bot.homeserver.mas_api.paths import V1, ulid


class UpstreamOAuthLinksAPI(Area):
    async def list_upstream_oauth_links(
        self, *, user: str | None = None, provider: str | None = None, subject: str | None = None,
        human_account_name: str | None = None, first: int | None = None, after: str | None = None,
        count: bool | None = None,
    ) -> Page[UpstreamOAuthLink]:
        """GET /api/admin/v1/upstream-oauth-links (listUpstreamOAuthLinks).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/upstream-oauth-link/listUpstreamOAuthLinks
        """
        params = {
            "filter[user]": None if user is None else ulid(user),
            "filter[provider]": None if provider is None else ulid(provider),
            "filter[subject]": subject,
            "filter[human-account-name]": human_account_name,
            **paging(first=first, after=after, count=count),
        }
        return page(UpstreamOAuthLink, await self._http.request("GET", V1.upstream_oauth_links, params=params))

    async def get_upstream_oauth_link(self, link_id: str) -> UpstreamOAuthLink:
        """GET /api/admin/v1/upstream-oauth-links/{id} (getUpstreamOAuthLink).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/upstream-oauth-link/getUpstreamOAuthLink
        """
        return single(UpstreamOAuthLink, await self._http.request("GET", V1.upstream_oauth_links[ulid(link_id)]))

    async def add_upstream_oauth_link(
        self, user_id: str, provider_id: str, subject: str, *, human_account_name: str | None = None,
    ) -> UpstreamOAuthLink:
        """POST /api/admin/v1/upstream-oauth-links (addUpstreamOAuthLink) — Conflict when that
        provider's subject is linked to a user already.

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/upstream-oauth-link/addUpstreamOAuthLink
        """
        body: dict[str, Any] = {"user_id": ulid(user_id), "provider_id": ulid(provider_id), "subject": subject}
        if human_account_name is not None:
            body["human_account_name"] = human_account_name
        return single(UpstreamOAuthLink, await self._http.request("POST", V1.upstream_oauth_links, json=body))

    async def delete_upstream_oauth_link(self, link_id: str) -> None:
        """DELETE /api/admin/v1/upstream-oauth-links/{id} (deleteUpstreamOAuthLink).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/upstream-oauth-link/deleteUpstreamOAuthLink
        """
        await self._http.request("DELETE", V1.upstream_oauth_links[ulid(link_id)])


class UpstreamOAuthProvidersAPI(Area):
    async def list_upstream_oauth_providers(
        self, *, enabled: bool | None = None, first: int | None = None, after: str | None = None,
        count: bool | None = None,
    ) -> Page[UpstreamOAuthProvider]:
        """GET /api/admin/v1/upstream-oauth-providers (listUpstreamOAuthProviders).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/upstream-oauth-provider/listUpstreamOAuthProviders
        """
        params = {"filter[enabled]": enabled, **paging(first=first, after=after, count=count)}
        return page(UpstreamOAuthProvider, await self._http.request("GET", V1.upstream_oauth_providers, params=params))

    async def get_upstream_oauth_provider(self, provider_id: str) -> UpstreamOAuthProvider:
        """GET /api/admin/v1/upstream-oauth-providers/{id} (getUpstreamOAuthProvider).

        Docs: https://element-hq.github.io/matrix-authentication-service/api/index.html#/upstream-oauth-provider/getUpstreamOAuthProvider
        """
        return single(UpstreamOAuthProvider, await self._http.request("GET", V1.upstream_oauth_providers[ulid(provider_id)]))
