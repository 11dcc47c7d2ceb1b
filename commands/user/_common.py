"""What the `user` group's modules share: the group itself, the endpoints it leaves out on
purpose, and small helpers."""

from __future__ import annotations

import secrets
from typing import Any

from bot.handler_api.context import Context
from bot.handler_api.spec import CommandError, CommandGroup
from bot.homeserver.admin_api.errors import NotFound
from bot.homeserver.admin_api.users import UserDetails
from bot.text.views import Code, Doc, PrivateSecret, Shown, Text

user = CommandGroup("user", "Local accounts")

USER_ORDER = ("name", "displayname", "creation_ts", "last_seen_ts", "admin", "deactivated", "locked",
              "shadow_banned", "is_guest", "user_type", "avatar_url")
MEDIA_ORDER = ("created_ts", "last_access_ts", "media_length", "media_type", "upload_name", "quarantined_by",
               "safe_from_quarantine")
MEDIA_DELETE_BATCH = 100  # how many files the preview looks at
REDACT_LIMIT = 1000  # Synapse's default: events looked at per room
GENERATED_PASSWORD_BYTES = 18

user.skip("GET /_synapse/admin/v1/register",
          "shared-secret registration needs the registration secret, not an admin token; `user create` creates accounts")
user.skip("POST /_synapse/admin/v1/register",
          "shared-secret registration needs the registration secret, not an admin token; `user create` creates accounts")
user.skip("GET /_synapse/admin/v1/search_users/<user_id>",
          "legacy search that returns password hashes; `user list --name` searches safely")
user.skip("DELETE /_synapse/admin/v1/users/<user_id>/media",
          "`user media --delete` deletes file by file (DELETE /_synapse/admin/v1/media/<server_name>/<media_id>) in a job "
          "that shows its progress, resumes after a restart and stops cleanly when cancelled")
user.skip("POST /_synapse/admin/v1/users/<user_id>/login",
          "would put a working access token for someone else's account into the room's history")
user.skip("POST /api/admin/v1/personal-sessions",
          "MAS answers with a new access token, which must never be posted into a room")
user.skip("POST /api/admin/v1/personal-sessions/<id>/regenerate",
          "MAS answers with a new access token, which must never be posted into a room")
user.skip("POST /api/admin/v1/upstream-oauth-links",
          "whoever holds the identity at the provider could then sign in as the account: people link their own "
          "identities by signing in through the provider")
user.skip("GET /api/admin/v1/user-emails/<id>",
          "addresses are named by the address itself (`user emails <user> --remove <address>`), not by MAS's ID")


def generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def with_generated_password(public: Doc, user: str, password: str, *, prefix: str, done: str) -> PrivateSecret:
    """A result whose generated password only the requester sees (in a direct message; never in the room)."""
    return PrivateSecret(
        public=public,
        secret=Text("The new password of ", Code(user), f" ({done}): ", Shown(password),
                    " — shown once; the bot does not keep it."),
        what="the generated password",
        if_undelivered=Text(f"{'The account was created' if done == 'created' else 'Its password was reset'} all the "
                            "same, and nobody knows the password: set one with ",
                            Code(f"{prefix} user reset-password {user} <password>"),
                            " (your message is removed from the room), or make direct messages work (encryption on, "
                            "and a device of yours that encrypts) and reset it again.", tone="warning"),
    )


async def password_can_reach_requester(ctx: Context, command: str) -> None:
    """Before a password is generated: it can only go to the requester alone, in an encrypted direct
    message. When that cannot work, refuse before anything changes, and say how to give one instead."""
    if ctx.private_channel is None:
        return
    problem = await ctx.private_channel(ctx.requester)
    if problem:
        raise CommandError(
            f"nothing was done: a generated password goes to you alone, in an encrypted direct message, and it "
            f"could not reach you ({problem}). Give the password in the command instead — {ctx.prefix} {command} "
            "<password> (your message is removed from the room at once) — or send the command from a client that "
            "encrypts")


async def existing(ctx: Context, user: str) -> UserDetails:
    """The account's details; a clear refusal when there is no such account."""
    try:
        return await ctx.api.user_details(user)
    except NotFound:
        raise CommandError(f"there is no account {user}") from None


def ratelimit_text(ratelimit: Any) -> str:
    if ratelimit is None:
        return "server default"
    if not ratelimit.messages_per_second:
        return "OFF (override: no rate limiting)"
    return f"{ratelimit.messages_per_second:g} messages/s, burst {ratelimit.burst_count:g} (override)"


# Where account commands find the account in matrix-authentication-service.
MAS_USER_ENDPOINT = "GET /api/admin/v1/users/by-username/<username>"
