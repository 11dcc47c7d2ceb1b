"""`user external-ids` — single-sign-on identities: view one account's, remove one provider's from
it, or remove one provider's from every account (a job). With matrix-authentication-service these
are MAS's upstream links; the account's backend (`ctx.accounts.for_user`) does the MAS-or-Synapse
part of viewing and removing."""

from __future__ import annotations

from typing import Any

from bot.handler_api.argtypes import ArgumentError, Identifier, LocalUserID
from bot.handler_api.context import Context
from bot.handler_api.previews import id_removal_preview, provider_label
from bot.handler_api.spec import Flag, Param, Role, RunAsJob, Target
from bot.homeserver.accounts import mas_reads
from bot.homeserver.accounts.synapse import remove_provider
from bot.homeserver.admin_api.errors import NotFound
from bot.homeserver.mas_api.errors import NotFound as MASNotFound
from bot.handler_api.jobs import SKIPPED, JobContext, JobResult, Page
from bot.text.views import Doc, Record, Untrusted

from ._common import MAS_USER_ENDPOINT, user


LINK_ENDPOINTS = ("GET /api/admin/v1/upstream-oauth-links", "GET /api/admin/v1/upstream-oauth-links/<id>",
                  "DELETE /api/admin/v1/upstream-oauth-links/<id>", "GET /api/admin/v1/upstream-oauth-providers",
                  "GET /api/admin/v1/upstream-oauth-providers/<id>", "GET /api/admin/v1/users/<id>")


@user.command(
    "external-ids", summary="Show an account's SSO identities; remove one provider's, for one account or all",
    role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account (or --all)", optional=True)],
    flags=[
        Flag("remove", "remove the IDs of this auth provider (with MAS: its links, by the provider's name or ID, "
                       "or one link's ID)", Identifier, role=Role.ADMIN, destructive=True),
        Flag("all", "every local account (with --remove); runs as a job"),
    ],
    endpoints=["GET /_synapse/admin/v3/users", "GET /_synapse/admin/v2/users/<user_id>",
               "PUT /_synapse/admin/v2/users/<user_id>", MAS_USER_ENDPOINT, *LINK_ENDPOINTS],
    details="With matrix-authentication-service these are MAS's upstream links; `--all --remove <provider>` walks "
            "that provider's links page by page as a job that resumes after a restart.",
    examples=["user external-ids alice", "user external-ids alice --remove oidc-google",
              "user external-ids --all --remove oidc-old-idp"],
)
async def external_ids(ctx: Context, user: str | None, remove: str | None, all: bool) -> Any:
    if all:
        return RunAsJob()  # remove-all: the job below
    assert user is not None
    account = await ctx.accounts.for_user(user)
    done = await account.remove_external_ids(remove) if remove else None  # remove-one
    shown = await account.external_ids()  # view
    return shown if done is None else Doc(done, shown)


@external_ids.validate
def _(user: str | None, remove: str | None, all: bool) -> None:
    if all and user:
        raise ArgumentError("give either an account or --all, not both")
    if not all and not user:
        raise ArgumentError("missing <user> (or --all with --remove)")
    if all and not remove:
        raise ArgumentError("--all only goes with --remove <provider>")


@external_ids.preview
async def _(ctx: Context, user: str | None, remove: str | None, all: bool) -> Any:
    assert remove is not None
    if all:
        return id_removal_preview(await ctx.accounts.everyones_ids(remove), None)
    assert user is not None
    account = await ctx.accounts.for_user(user)
    return id_removal_preview(await account.id_removal(remove), account.home)


@external_ids.as_job
async def _(job: JobContext, remove: str, **_: Any) -> JobResult:
    """remove-all: where the accounts live decides the walk, once (a resumed job keeps its route)."""
    route = job.state.get("route")
    if route is None:
        route = job.accounts.home_of_all
        await job.save(route=route)
    return await _EVERYWHERE[route](job, remove)


async def _remove_ids_everywhere(job: JobContext, remove: str) -> JobResult:
    """Every local account, page by page; each account that has an ID at the provider loses it."""

    async def accounts(cursor: str | None, size: int) -> Page[str]:
        found = await job.api.list_users(deactivated=None, locked=True, from_token=cursor, limit=size)
        return Page([u.name for u in found.items], found.next_token if found.items else None, found.total)

    async def remove_from(user_id: str) -> str:
        try:
            details = await job.api.user_details(user_id)
        except NotFound:
            return "gone"  # deleted since the list was read
        if not any(e.auth_provider == remove for e in details.external_ids):
            # Removed by this job before a restart (it said so first), or never there.
            return "removed" if job.intended(user_id) else "none"
        await job.intend(user_id)
        await remove_provider(job.api, details, remove)
        return "removed"

    done = await job.for_each(accounts, remove_from, target=lambda user_id: Target("user", user_id),
                              view=_external_ids_summary)
    return JobResult("done", _external_ids_summary(done))


async def _remove_links_everywhere(job: JobContext, remove: str) -> JobResult:
    """Every link to one provider, page by page over MAS's cursors; each link's account goes
    through policy. A restart goes on after the last page saved (removed links leave the list,
    so a repeated page finds only what is left)."""
    mas = job.accounts.mas("upstream links")
    provider = await mas_reads.resolve_provider(mas, job.state.get("provider_id") or remove)
    if job.state.get("provider_id") != provider.id:
        await job.save(provider_id=provider.id)
    owners: dict[str, str] = {}

    async def links(cursor: str | None, size: int) -> Page[tuple[Any, str | None]]:
        found = await mas.list_upstream_oauth_links(provider=provider.id, first=size, after=cursor,
                                                    count=cursor is None)
        for user_id in {link.user_id for link in found.items if link.user_id} - owners.keys():
            owners[user_id] = await _matrix_id(mas, user_id, job.server_name)
        items = [(link, owners.get(link.user_id or "")) for link in found.items]
        return Page(items, found.next_cursor, found.count)

    async def remove_one(item: tuple[Any, str | None]) -> str:
        await job.intend(item[0].id)
        try:
            await mas.delete_upstream_oauth_link(item[0].id)
        except MASNotFound as exc:
            if not exc.answered:
                raise
            return "gone"  # removed meanwhile
        return "removed"

    done = await job.for_each(links, remove_one, key=lambda item: item[0].id,
                              target=lambda item: Target("user", item[1]) if item[1] else None,
                              view=lambda progress: _links_summary(progress, provider))
    # Links removed before a restart, whose batch was not saved yet, leave the list: marked.
    return JobResult("done" if not done.count("failed") else "partial",
                     _links_summary(done, provider, removed_before_restart=len(await job.leftover_marks())))


async def _matrix_id(mas: Any, mas_user_id: str, server_name: str) -> str:
    """The Matrix ID of a MAS user: whom policy checks before one of its links goes."""
    return f"@{(await mas.get_user(mas_user_id)).username}:{server_name}"


def _links_summary(progress: Any, provider: Any, *, removed_before_restart: int = 0) -> Record:
    return Record(None, [("provider", Untrusted(provider_label(provider), 160)),
                         ("links looked at", progress.done + removed_before_restart),
                         ("links removed", progress.count("removed") + removed_before_restart),
                         ("already gone", progress.count("gone")),
                         ("skipped (protected)", progress.count(SKIPPED)), ("failed", progress.count("failed"))])


def _external_ids_summary(progress: Any) -> Record:
    return Record(None, [("accounts looked at", progress.done), ("IDs removed", progress.count("removed")),
                         ("skipped (protected)", progress.count(SKIPPED))])


# Where the accounts live → the walk that removes a provider's identities from all of them.
_EVERYWHERE = {"MAS": _remove_links_everywhere, "Synapse": _remove_ids_everywhere}
