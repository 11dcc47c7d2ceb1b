"""Every user command, through the chat, with its effect checked on the real homeserver."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

import commands.user as user_commands
from bot.handler_api.previews import AccountChangePreview, DeviceLogoutPreview, PasswordResetPreview, RedactionPreview
from bot.demo.run import TINY_PNG, World
from bot.demo.synapse import Account, LocalHomeserver
from bot.demo.localchat import ChatClient, ChatError
from tests.support.chat import Person, body, code_of


async def confirm(person: Person, command: str) -> str:
    prompt = await person.ask(command)
    assert "confirm" in body(prompt), body(prompt)
    return await person.ask_body(f"!admin confirm {code_of(prompt)}")


async def details(world: World, user_id: str) -> dict:
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        return (await http.get(f"/_synapse/admin/v2/users/{user_id}")).json()


async def can_log_in(hs: LocalHomeserver, account: Account, password: str) -> bool:
    async with httpx.AsyncClient(base_url=hs.url) as http:
        response = await http.post("/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": account.localpart}, "password": password})
        return response.status_code == 200


async def token_works(hs: LocalHomeserver, token: str) -> bool:
    async with httpx.AsyncClient(base_url=hs.url, headers={"Authorization": f"Bearer {token}"}) as http:
        return (await http.get("/_matrix/client/v3/account/whoami")).status_code == 200


async def test_info_gathers_what_a_moderator_needs(viewer: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("info-target", displayname="Info Target")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    await chat.upload(TINY_PNG, "image/png")
    await chat.create_room(name="one room")
    await chat.close()
    text = await viewer.ask_body(f"!admin user info {account.localpart}")
    for expected in ("display name: Info Target", "flags: none", "devices: 1", "joined rooms: 1", "uploaded media: 1",
                     "rate limit: server default", "created: 20"):
        assert expected in text, (expected, text)
    assert "password" not in text.lower() and "$2b$" not in text


async def test_list_filters(viewer: Person, admin: Person, homeserver: LocalHomeserver) -> None:
    gone = await homeserver.register("listed-gone")
    await confirm(admin, f"!admin user deactivate {gone.user_id}")
    assert gone.user_id not in await viewer.ask_body("!admin user list --name listed-gone")
    assert gone.user_id in await viewer.ask_body("!admin user list --name listed-gone --deactivated")
    assert gone.user_id in await viewer.ask_body("!admin user list --name listed-gone --all")
    admins = await viewer.ask_body("!admin user list --admins")
    assert "adminbot" in admins and "viewer" not in admins


async def test_create_with_generated_password_then_reset_with_a_typed_one(admin: Person, world: World, homeserver: LocalHomeserver) -> None:
    # The admin has no device that encrypts, so a generated password could not reach them alone: asked
    # first, nothing is created, and they are told how to give one (tests/e2e/test_secrets.py has a
    # generated one arrive in a direct message).
    text = await admin.ask_body("!admin user create newcomer --displayname 'New Comer'")
    assert "nothing was done" in text and "has no device that can receive" in text and "Created" not in text
    assert "!admin user create @newcomer:localhost <password>" in text
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        assert (await http.get("/_synapse/admin/v2/users/@newcomer:localhost")).status_code == 404
    text = await admin.ask_body("!admin user create newcomer first-pw-123 --displayname 'New Comer'")
    assert "Created @newcomer:localhost" in text and "first-pw-123" not in text
    account = Account("@newcomer:localhost", "", "", "")
    assert (await details(world, account.user_id))["displayname"] == "New Comer"
    assert await can_log_in(homeserver, account, "first-pw-123")
    assert "already exists" in await admin.ask_body("!admin user create newcomer second-pw-1")

    # A typed password: the command leaves the room, the password is never echoed.
    event_id = await admin.say("!admin user reset-password newcomer S3cret-typed-pw")
    prompt = await admin.chat.wait_for_reply(admin.room_id, event_id)
    assert "S3cret-typed-pw" not in body(prompt) and "as typed (hidden)" in body(prompt)
    redacted = await admin.chat.get_event(admin.room_id, event_id)
    assert redacted["content"] == {}  # removed from the room
    result = await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "every device was logged out" in result and "S3cret" not in result
    assert await can_log_in(homeserver, account, "S3cret-typed-pw")
    audit = await admin.ask_body("!admin audit --limit 5")
    assert "S3cret-typed-pw" not in audit


async def test_reset_password_no_logout_keeps_sessions(admin: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("keeps-session")
    await confirm(admin, f"!admin user reset-password {account.user_id} another-pw-123 --no-logout")
    assert await token_works(homeserver, account.access_token)
    await confirm(admin, f"!admin user reset-password {account.user_id} third-pw-456")
    assert not await token_works(homeserver, account.access_token)


async def test_admin_on_and_off(admin: Person, world: World, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("promote-me")
    assert "is now a server admin" in await confirm(admin, f"!admin user admin {account.user_id} on")
    assert (await details(world, account.user_id))["admin"] is True
    assert "already is" in await admin.ask_body(f"!admin user admin {account.user_id} on")
    await confirm(admin, f"!admin user admin {account.user_id} off")
    assert (await details(world, account.user_id))["admin"] is False


@pytest.mark.parametrize(("verb", "field"), [("suspend", "suspended"), ("shadow-ban", "shadow_banned"), ("lock", "locked")])
async def test_moderation_toggles_and_undo(mod: Person, world: World, homeserver: LocalHomeserver, verb: str, field: str) -> None:
    account = await homeserver.register(f"toggle-{verb}")
    assert "is now" in await confirm(mod, f"!admin user {verb} {account.user_id}")
    assert (await details(world, account.user_id))[field] is True
    assert "already" in await mod.ask_body(f"!admin user {verb} {account.user_id}")
    assert "no longer" in await confirm(mod, f"!admin user {verb} {account.user_id} --undo")
    assert (await details(world, account.user_id))[field] is False


async def test_suspended_user_cannot_send(mod: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("suspended-sender")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    room_id = await chat.create_room(name="mine")
    await confirm(mod, f"!admin user suspend {account.user_id}")
    with pytest.raises(ChatError, match="403"):
        await chat.send_text(room_id, "can I still talk?")
    await chat.close()


async def test_lock_never_creates_a_missing_account(mod: Person, world: World) -> None:
    text = await mod.ask_body("!admin user lock nobody-to-lock")
    assert "there is no account @nobody-to-lock:localhost" in text
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        assert (await http.get("/_synapse/admin/v2/users/@nobody-to-lock:localhost")).status_code == 404


async def test_moderators_cannot_touch_staff_but_can_touch_others(mod: Person, viewer: Person, admin: Person, homeserver: LocalHomeserver) -> None:
    refused = await mod.ask_body(f"!admin user suspend {viewer.user_id}")
    assert "Refused" in refused and "only admins can act on staff accounts" in refused
    ordinary = await homeserver.register("ordinary-suspend")
    assert "Dry run" in await mod.ask_body(f"!admin user suspend {ordinary.user_id} --dry-run")
    assert "Dry run" in await admin.ask_body(f"!admin user suspend {viewer.user_id} --dry-run")


async def test_deactivate_erase_and_reactivate_with_password(admin: Person, world: World, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("erase-me", displayname="Erase Me")
    await confirm(admin, f"!admin user deactivate {account.user_id} --erase")
    after = await details(world, account.user_id)
    assert after["deactivated"] and after["erased"]
    text = await admin.ask_body(f"!admin user reactivate {account.user_id} back-again-pw")
    assert "Reactivated" in text
    assert await can_log_in(homeserver, account, "back-again-pw")
    assert "is not deactivated" in await admin.ask_body(f"!admin user reactivate {account.user_id}")


async def test_whois_devices_prune_rename_and_logout(mod: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("many-devices")
    async with httpx.AsyncClient(base_url=homeserver.url) as http:
        for name in ("laptop", "phone"):
            await http.post("/_matrix/client/v3/login", json={
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": account.localpart},
                "password": account.password, "initial_device_display_name": name})
    await token_works(homeserver, account.access_token)  # records a session with an IP
    whois = await mod.ask_body(f"!admin user whois {account.user_id}")
    assert "127.0.0.1" in whois
    listed = await mod.ask_body(f"!admin user devices {account.user_id}")
    assert "laptop" in listed and "phone" in listed and "3 shown of 3" in listed
    assert "Renamed" in await mod.ask_body(f"!admin user device-rename {account.user_id} {account.device_id} 'First device'")
    assert "First device" in await mod.ask_body(f"!admin user device {account.user_id} {account.device_id}")
    prune = await mod.ask(f"!admin user devices {account.user_id} --prune-older-than 1d")
    assert "0 of 3 devices" in body(prune)  # all were seen recently (or never)
    await mod.ask_body(f"!admin cancel {code_of(prune)}")
    assert "Deleted device" in await confirm(mod, f"!admin user devices {account.user_id} --delete {account.device_id}")
    assert not await token_works(homeserver, account.access_token)
    assert "Logged out 2 devices" in await confirm(mod, f"!admin user logout {account.user_id}")
    assert "No devices" in await mod.ask_body(f"!admin user devices {account.user_id}")


async def test_rooms_memberships_invites_pushers_accountdata(mod: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("busy-user")
    other = await homeserver.register("busy-other")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    room_id = await chat.create_room(name="busy", invite=[other.user_id])
    left = await chat.create_room(name="left")
    await chat.request("POST", f"/_matrix/client/v3/rooms/{left}/leave", json={})
    await chat.request("PUT", f"/_matrix/client/v3/user/{account.user_id}/account_data/m.ignored_user_list",
                       json={"ignored_users": {other.user_id: {}}})
    await chat.request("POST", "/_matrix/client/v3/pushers/set", json={
        "kind": "http", "app_id": "org.example.app", "app_display_name": "Example", "device_display_name": "phone",
        "pushkey": "abc", "lang": "en", "data": {"url": "https://push.example.invalid/_matrix/push/v1/notify"}})
    await chat.close()
    rooms = await mod.ask_body(f"!admin user rooms {account.user_id} --since 1h")
    assert room_id in rooms and left not in rooms.split("Rooms joined since")[0] and "Rooms joined since" in rooms
    assert ": 2 (including rooms left since)" in rooms
    memberships = await mod.ask_body(f"!admin user memberships {other.user_id}")
    assert room_id in memberships and "invite" in memberships
    assert "sent 1 invites" in await mod.ask_body(f"!admin user invites-sent {account.user_id} --since 1h")
    pushers = await mod.ask_body(f"!admin user pushers {account.user_id}")
    assert "Example" in pushers and "push.example.invalid" in pushers
    data = await mod.ask_body(f"!admin user accountdata {account.user_id}")
    assert "m.ignored_user_list" in data and "ignores 1 users" in data and other.user_id not in data


async def test_media_list_and_delete_until_none_left(mod: Person, admin: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("media-heavy")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    uris = [await chat.upload(TINY_PNG, "image/png", f"p{i}.png") for i in range(3)]
    listed = await mod.ask_body(f"!admin user media {account.user_id}")
    assert all(uri in listed for uri in uris) and "3 shown of 3" in listed
    assert "needs the admin role" in await mod.ask_body(f"!admin user media {account.user_id} --delete")
    prompt = await admin.ask(f"!admin user media {account.user_id} --delete")
    assert "3 files" in body(prompt) and "Runs as a job" in body(prompt)
    started = await admin.chat.wait_for_reply(admin.room_id, await admin.say(f"!admin confirm {code_of(prompt)}"))
    final = await admin.chat.wait_for_edit(admin.room_id, started["event_id"],
                                           lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=60)
    result = final["content"]["m.new_content"]["body"]
    assert "✅ done" in result and "Deleted 3 files" in result and "0 left" in result, result
    response = await chat.http.get("/_matrix/client/v1/media/download/" + uris[0][len("mxc://"):])
    assert response.status_code == 404
    await chat.close()


async def test_ratelimit_show_set_reset_and_never_an_empty_override(mod: Person, world: World, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("rate-limited")
    assert "server default" in await mod.ask_body(f"!admin user ratelimit {account.user_id}")
    refused = await mod.ask_body(f"!admin user ratelimit {account.user_id} set")
    assert "needs both" in refused
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        assert (await http.get(f"/_synapse/admin/v1/users/{account.user_id}/override_ratelimit")).json() == {}
        text = await mod.ask_body(f"!admin user ratelimit {account.user_id} set --messages-per-second 5 --burst 20")
        assert "5 messages/s, burst 20" in text
        assert (await http.get(f"/_synapse/admin/v1/users/{account.user_id}/override_ratelimit")).json() == {
            "messages_per_second": 5, "burst_count": 20}
        assert "server default" in await mod.ask_body(f"!admin user ratelimit {account.user_id} reset")
        assert (await http.get(f"/_synapse/admin/v1/users/{account.user_id}/override_ratelimit")).json() == {}


async def test_lookups_and_username_available(mod: Person, viewer: Person, world: World, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("with-3pid")
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        await http.put(f"/_synapse/admin/v2/users/{account.user_id}", json={
            "threepids": [{"medium": "email", "address": "someone@example.org"}],
            "external_ids": [{"auth_provider": "oidc-test", "external_id": "sub-123"}]})
    assert account.user_id in await mod.ask_body("!admin user by-3pid email someone@example.org")
    assert "No account has" in await mod.ask_body("!admin user by-3pid email nobody@example.org")
    assert account.user_id in await mod.ask_body("!admin user by-external-id oidc-test sub-123")
    assert "available" in await viewer.ask_body("!admin user username-available free-name-xyz")
    assert "cannot be registered" in await viewer.ask_body("!admin user username-available with-3pid")


async def test_experimental_features(admin: Person, viewer: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("experimenter")
    assert "msc3881: no" in await viewer.ask_body(f"!admin user experimental-features {account.user_id}")
    assert "needs the admin role" in await viewer.ask_body(f"!admin user experimental-features {account.user_id} --enable msc3881")
    assert "msc3881: yes" in await admin.ask_body(f"!admin user experimental-features {account.user_id} --enable msc3881")


def expiry_on_the_server(hs: LocalHomeserver, user_id: str) -> int | None:
    # No endpoint reads an account's expiry back: it is where Synapse keeps it.
    with sqlite3.connect(hs.root / "homeserver.db", timeout=30) as db:
        row = db.execute("SELECT expiration_ts_ms FROM account_validity WHERE user_id = ?", (user_id,)).fetchone()
    return None if row is None else int(row[0])


async def test_account_validity_sets_when_an_account_expires(admin: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("validity")
    assert "--expires is required" in await admin.ask_body(f"!admin user account-validity {account.user_id}")
    text = await admin.ask_body(f"!admin user account-validity {account.user_id} --expires 2031-05-01")
    assert "now expires on 2031-05-01 00:00 UTC" in text
    assert expiry_on_the_server(homeserver, account.user_id) == 1935360000000  # 2031-05-01T00:00Z
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    assert (await chat.request("GET", "/_matrix/client/v3/account/whoami"))["user_id"] == account.user_id
    # A date in the past: from now on the homeserver refuses the account.
    assert "now expires on 2001-01-01" in await admin.ask_body(f"!admin user account-validity {account.user_id} --expires 2001-01-01")
    with pytest.raises(ChatError) as refused:
        await chat.request("GET", "/_matrix/client/v3/account/whoami")
    assert "ORG_MATRIX_EXPIRED_ACCOUNT" in str(refused.value)
    await chat.close()


async def test_allow_cross_signing_reset_needs_a_master_key(admin: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("no-cross-signing")
    result = await confirm(admin, f"!admin user allow-cross-signing-reset {account.user_id}")
    assert "M_NOT_FOUND" in result  # Synapse answers 404 for accounts without a master key


async def test_redact_runs_as_a_job_and_really_redacts(mod: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("redact-me")
    chat = ChatClient(homeserver.url, account.user_id, account.access_token)
    room_id = await chat.create_room(name="spam here")
    events = [await chat.send_text(room_id, f"spam {i}") for i in range(3)]
    prompt = await mod.ask(f"!admin user redact {account.user_id} --reason spam")
    assert "In ALL rooms" in body(prompt)
    started_id = await mod.say(f"!admin confirm {code_of(prompt)}")
    started = await mod.chat.wait_for_reply(mod.room_id, started_id)
    final = await mod.chat.wait_for_edit(mod.room_id, started["event_id"],
                                         lambda e: "⏳" not in e["content"]["m.new_content"]["body"], timeout=60)
    assert "✅ done" in final["content"]["m.new_content"]["body"], final["content"]["m.new_content"]["body"]
    for event_id in events:
        assert (await chat.get_event(room_id, event_id))["content"] == {}
    await chat.close()


async def test_external_ids_show_and_remove_one_provider(admin: Person, world: World, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("two-idps")
    async with httpx.AsyncClient(base_url=world.hs.url, headers={"Authorization": f"Bearer {world.bot.access_token}"}) as http:
        await http.put(f"/_synapse/admin/v2/users/{account.user_id}", json={"external_ids": [
            {"auth_provider": "oidc-a", "external_id": "a-1"}, {"auth_provider": "oidc-b", "external_id": "b-1"}]})
    shown = await admin.ask_body(f"!admin user external-ids {account.user_id}")
    assert "oidc-a" in shown and "oidc-b" in shown
    prompt = await admin.ask(f"!admin user external-ids {account.user_id} --remove oidc-a")
    assert "keeps oidc-b" in body(prompt)
    await admin.ask_body(f"!admin confirm {code_of(prompt)}")
    after = await details(world, account.user_id)
    assert after["external_ids"] == [{"auth_provider": "oidc-b", "external_id": "b-1"}]



async def test_device_create(admin: Person, homeserver: LocalHomeserver) -> None:
    account = await homeserver.register("device-made")
    assert "exists for" in await admin.ask_body(f"!admin user device-create {account.user_id} BRIDGEDEV")
    assert "BRIDGEDEV" in await admin.ask_body(f"!admin user devices {account.user_id}")


async def test_account_previews_are_data(admin: Person, bot, homeserver: LocalHomeserver) -> None:
    from tests.e2e.test_room_commands import context_for

    account = await homeserver.register("preview-account", displayname="Preview")
    ctx = context_for(bot, admin)
    lock = await user_commands.lock.preview_handler(ctx, user=account.user_id, undo=False)
    assert isinstance(lock, AccountChangePreview) and lock.account.name == account.user_id and not lock.account.locked
    gone = await user_commands.deactivate.preview_handler(ctx, user=account.user_id, erase=True)
    assert isinstance(gone, AccountChangePreview) and gone.joined_rooms == 0 and gone.erase is True
    logout = await user_commands.logout.preview_handler(ctx, user=account.user_id, session=None)
    assert isinstance(logout, DeviceLogoutPreview) and len(logout.devices) == 1  # the registration's session
    reset = await user_commands.reset_password.preview_handler(ctx, user=account.user_id, password=None, no_logout=False)
    assert isinstance(reset, PasswordResetPreview) and reset.devices == 1 and reset.logout and not reset.password_given
    redact = await user_commands.redact.preview_handler(ctx, user=account.user_id, room=[], limit=None, reason="spam",
                                                       since=None)
    assert isinstance(redact, RedactionPreview) and redact.rooms == [] and redact.joined_rooms == 0 and redact.limit == 1000
