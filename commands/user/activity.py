"""`user` — what an account did: its media (and deleting them), invites it sent; its
experimental features; which account has an address or a single-sign-on identity; whether a
name is free."""

from __future__ import annotations

from typing import Any

from bot.handler_api.argtypes import Choice, Identifier, LocalUserID, Timestamp
from bot.handler_api.context import Context
from bot.handler_api.parsing import PageRequest
from bot.handler_api.previews import UserMediaDeletionPreview
from bot.handler_api.spec import Flag, Param, Role, RunAsJob
from bot.homeserver.admin_api.errors import NotFound
from bot.handler_api.jobs import ItemResult, JobContext, JobResult, Page
from bot.text.views import Bytes, Code, Record, Table, Text, When

from ._common import MEDIA_DELETE_BATCH, MEDIA_ORDER, user


@user.command(
    "media", summary="Media uploaded by an account", role=Role.MODERATOR, paged=True,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("order", "sort by this column", Choice(*MEDIA_ORDER)),
        Flag("dir", "sort direction (default newest first)", Choice("f", "b")),
        Flag("delete", "delete every file this account uploaded (runs as a job)", role=Role.ADMIN, destructive=True,
             irreversible="deleted files are gone from disk"),
    ],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/media", "DELETE /_synapse/admin/v1/media/<server_name>/<media_id>"],
)
async def media(ctx: Context, user: str, order: str | None, dir: str | None, delete: bool, page: PageRequest) -> Any:
    if delete:
        return RunAsJob()  # file by file, with progress, cancellable
    result = await ctx.api.user_media(user, from_token=page.from_token, limit=page.limit, order_by=order, direction=dir)
    rows = [[Code(f"mxc://{ctx.server_name}/{m.media_id}"), m.media_type, Bytes(m.media_length), m.upload_name,
             When(m.created_ts), "quarantined" if m.quarantined_by else ("protected" if m.safe_from_quarantine else "")]
            for m in result.items]
    return Table(f"Media of {user}", ["media", "type", "size", "name", "uploaded", "state"], rows,
                 total=result.total, next_from=result.next_token, empty="No media.")


@media.preview
async def _(ctx: Context, user: str, **_: Any) -> UserMediaDeletionPreview:
    result = await ctx.api.user_media(user, limit=MEDIA_DELETE_BATCH)
    return UserMediaDeletionPreview(user, result.total or 0, sum(m.media_length or 0 for m in result.items),
                                    more_than_first_batch=(result.total or 0) > len(result.items))


@media.as_job
async def _(job: JobContext, user: str, **_: Any) -> JobResult:
    async def files(cursor: str | None, size: int) -> Page[str]:
        # Deleted files leave the listing: it starts after the files that stayed (failed ones).
        kept = job.state.get("bulk", {}).get("counts", {}).get("failed", 0)
        found = await job.api.user_media(user, from_token=str(kept) if kept else None, limit=size,
                                         order_by="created_ts", direction="f")
        more = (found.total or 0) > kept + len(found.items)
        return Page([m.media_id for m in found.items], "more" if more and found.items else None, found.total)

    async def delete_one(media_id: str) -> ItemResult:
        await job.intend(media_id)
        deleted = await job.api.delete_media(job.server_name, media_id)
        return ItemResult("deleted") if media_id in deleted else ItemResult("failed", "the homeserver kept it")

    # Deleted files leave the listing: the next page is read once this one is done.
    done = await job.for_each(files, delete_one, prefetch=False)
    # Files deleted before a restart, whose batch was not saved yet, are not listed again: marked.
    deleted = done.count("deleted") + len(await job.leftover_marks())
    left = (await job.api.user_media(user, limit=1)).total or 0
    return JobResult("done" if not done.count("failed") else "partial",
                     Text(f"Deleted {deleted} files uploaded by ", Code(user), f"; {left} left.",
                          tone="ok" if not left else "warning"))


@user.command(
    "invites-sent", summary="How many invites an account sent since a date (spam triage)", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    flags=[Flag("since", "count from then (default: 24h ago)", Timestamp(past=True))],
    endpoints=["GET /_synapse/admin/v1/users/<user_id>/sent_invite_count"],
)
async def invites_sent(ctx: Context, user: str, since: int | None) -> Text:
    since = since if since is not None else ctx.now_ms() - 86_400_000
    count = await ctx.api.sent_invite_count(user, from_ts=since)
    return Text(Code(user), f" sent {count} invites since ", When(since), ".")


@user.command(
    "experimental-features", summary="Show or change an account's experimental features", role=Role.VIEWER,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("enable", "turn this feature on (msc3881, msc3575, msc4222)", Identifier, repeat=True, role=Role.ADMIN, writes=True),
        Flag("disable", "turn this feature off", Identifier, repeat=True, role=Role.ADMIN, writes=True),
    ],
    endpoints=["GET /_synapse/admin/v1/experimental_features/<user_id>",
               "PUT /_synapse/admin/v1/experimental_features/<user_id>"],
)
async def experimental_features(ctx: Context, user: str, enable: list[str], disable: list[str]) -> Record:
    if enable or disable:
        await ctx.api.set_experimental_features(user, {**{f: True for f in enable}, **{f: False for f in disable}})
    features = await ctx.api.experimental_features(user)
    return Record(f"Experimental features of {user}", [(name, on) for name, on in sorted(features.items())])


@user.command(
    "by-3pid", summary="Which account has this e-mail address or phone number", role=Role.MODERATOR,
    params=[Param("medium", Choice("email", "msisdn"), "email or msisdn"), Param("address", Identifier, "the address")],
    endpoints=["GET /_synapse/admin/v1/threepid/<medium>/users/<address>"],
)
async def by_3pid(ctx: Context, medium: str, address: str) -> Text:
    try:
        return Text(f"{medium} {address} belongs to ", Code(await ctx.api.user_by_threepid(medium, address)), ".")
    except NotFound:
        return Text(f"No account has {medium} {address}.")


@user.command(
    "by-external-id", summary="Which account an SSO identity belongs to", role=Role.MODERATOR,
    params=[Param("provider", Identifier, "auth provider ID (OIDC providers are prefixed oidc-)"),
            Param("external_id", Identifier, "the ID at that provider")],
    endpoints=["GET /_synapse/admin/v1/auth_providers/<provider>/users/<external_id>"],
)
async def by_external_id(ctx: Context, provider: str, external_id: str) -> Text:
    try:
        return Text(f"{provider} {external_id} belongs to ", Code(await ctx.api.user_by_external_id(provider, external_id)), ".")
    except NotFound:
        return Text(f"No account is linked to {external_id} at {provider}.")


@user.command(
    "username-available", summary="Whether a local user name can be registered", role=Role.VIEWER,
    params=[Param("name", Identifier, "the local part, e.g. alice")],
    endpoints=["GET /_synapse/admin/v1/username_available"],
)
async def username_available(ctx: Context, name: str) -> Text:
    from bot.homeserver.admin_api.errors import BadRequest

    try:
        await ctx.api.username_available(name)
    except BadRequest as exc:
        return Text(f"{name} cannot be registered: {exc.error}.")
    return Text(f"{name} is available.", tone="ok")
