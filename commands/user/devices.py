"""`user` — an account's devices on the homeserver: list, show, create, rename, delete, prune."""

from __future__ import annotations

from typing import Any

from bot.handler_api.argtypes import ArgumentError, Duration, Identifier, LocalUserID
from bot.handler_api.argtypes import Text as TextArg
from bot.handler_api.context import Context
from bot.handler_api.previews import DeviceLogoutPreview, devices_table
from bot.handler_api.spec import CommandError, Flag, Param, Role
from bot.text.views import Code, Record, Text, Untrusted, When

from ._common import existing, user


@user.command(
    "devices", summary="List an account's devices; delete one, or prune those unused for a while",
    role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account")],
    flags=[
        Flag("delete", "delete (log out) this device", Identifier, destructive=True,
             irreversible="deleted devices and their keys cannot be restored"),
        Flag("prune-older-than", "delete devices not seen for this long", Duration, destructive=True,
             irreversible="deleted devices and their keys cannot be restored"),
    ],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>/devices",
               "DELETE /_synapse/admin/v2/users/<user_id>/devices/<device_id>",
               "POST /_synapse/admin/v2/users/<user_id>/delete_devices"],
    examples=["user devices alice", "user devices alice --prune-older-than 90d"],
)
async def devices(ctx: Context, user: str, delete: str | None, prune_older_than: int | None) -> Any:
    if delete:
        await ctx.api.delete_device(user, delete)
        return Text(f"Deleted device {delete} of ", Code(user), ".", tone="ok")
    if prune_older_than:
        stale = _stale(await ctx.api.devices(user), ctx.now_ms() - prune_older_than)
        await ctx.api.delete_devices(user, [d.device_id for d in stale])
        return Text(f"Deleted {len(stale)} devices of ", Code(user), " not seen since the cut-off.", tone="ok")
    return devices_table(await ctx.api.devices(user), f"Devices of {user}")


@devices.validate
def _(user: str, delete: str | None, prune_older_than: int | None) -> None:
    if delete and prune_older_than:
        raise ArgumentError("use either --delete or --prune-older-than")


def _stale(found: list[Any], cutoff_ms: int) -> list[Any]:
    # Devices never seen are kept: a device just created has no last-seen time yet.
    return [d for d in found if d.last_seen_ts is not None and d.last_seen_ts < cutoff_ms]


@devices.preview
async def _(ctx: Context, user: str, delete: str | None, prune_older_than: int | None) -> DeviceLogoutPreview:
    found = await ctx.api.devices(user)
    if delete:
        chosen = [d for d in found if d.device_id == delete]
        if not chosen:
            raise CommandError(f"{user} has no device {delete}")
        return DeviceLogoutPreview(user, chosen, of_total=len(found))
    cutoff = ctx.now_ms() - (prune_older_than or 0)
    return DeviceLogoutPreview(user, _stale(found, cutoff), of_total=len(found), cutoff_ms=cutoff)


@user.command(
    "device", summary="One device of an account", role=Role.MODERATOR,
    params=[Param("user", LocalUserID, "the account"), Param("device", Identifier, "device ID")],
    endpoints=["GET /_synapse/admin/v2/users/<user_id>/devices/<device_id>"],
)
async def device(ctx: Context, user: str, device: str) -> Record:
    found = await ctx.api.device(user, device)
    return Record(f"Device {found.device_id}", [
        ("name", Untrusted.of(found.display_name, 100)), ("last IP", found.last_seen_ip), ("client", Untrusted.of(found.last_seen_user_agent, 200)),
        ("last seen", When(found.last_seen_ts)), ("dehydrated", found.dehydrated),
    ])


@user.command(
    "device-create", summary="Create an empty device for an account (e.g. for an appservice or a bridge)",
    role=Role.ADMIN, writes=True,
    params=[Param("user", LocalUserID, "the account"), Param("device", Identifier, "the device ID to create")],
    endpoints=["POST /_synapse/admin/v2/users/<user_id>/devices"],
)
async def device_create(ctx: Context, user: str, device: str) -> Text:
    await existing(ctx, user)
    await ctx.api.create_device(user, device)
    return Text(f"Device {device} exists for ", Code(user), " (it was created unless it already existed).", tone="ok")


@user.command(
    "device-rename", summary="Rename one device of an account", role=Role.MODERATOR, writes=True,
    params=[Param("user", LocalUserID, "the account"), Param("device", Identifier, "device ID"),
            Param("name", TextArg, "the new name")],
    endpoints=["PUT /_synapse/admin/v2/users/<user_id>/devices/<device_id>"],
)
async def device_rename(ctx: Context, user: str, device: str, name: str) -> Text:
    await ctx.api.device(user, device)  # a clear 404 for a device that does not exist
    await ctx.api.rename_device(user, device, name)
    return Text(f"Renamed device {device} of ", Code(user), f" to {name}.", tone="ok")
