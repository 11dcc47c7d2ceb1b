"""The bot on ESS, through chat: a bot configured with `mas:` pointing at the stand-in MAS, next to
the real test Synapse. Every test talks to the bot as the team would and asserts the effect in the
stand-in's state (and, where an operation must not or must reach Synapse, in the real Synapse).

One bot for the module (its own world: account, admin room, people); the bulk-removal test restarts
it mid-job, and runs last.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot import wiring
from bot.app import App
from bot.config import Config
from bot.demo.run import World, running_bot
from bot.demo.synapse import Account, LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import Person, body, code_of
from tests.support.mas_standin import MASStandIn, User, running_standin

BOT_OPTIONS: dict[str, Any] = {"job_poll_interval": 0.5, "job_edit_interval": 0.2, "job_batch_size": 5}


class BotRun:
    """The module's bot, which one test restarts."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.app: App | None = None
        self._running: Any = None

    async def start(self, **options: Any) -> App:
        self._running = running_bot(self.config, **{**BOT_OPTIONS, **options})
        self.app = await self._running.__aenter__()
        return self.app

    async def stop(self) -> None:
        if self._running is not None:
            await self._running.__aexit__(None, None, None)
            self._running = None


@dataclass
class ESS:
    hs: LocalHomeserver
    mas: MASStandIn
    world: World
    people: dict[str, Person]
    bot: BotRun
    http: httpx.AsyncClient  # the real Synapse's Admin API, as the bot's account

    @property
    def admin(self) -> Person:
        return self.people["admin"]

    @property
    def mod(self) -> Person:
        return self.people["mod"]

    async def account(self, name: str, **options: Any) -> tuple[Account, User]:
        """An account on the real Synapse, and its MAS user (with the session its login made)."""
        account = await self.hs.register(f"{name}-ess")
        return account, self.mas.add_account(account, **options)

    async def synapse(self, user_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/_synapse/admin/v2/users/{user_id}")
        response.raise_for_status()
        return dict(response.json())

    async def confirm(self, person: Person, command: str) -> tuple[str, str]:
        """A destructive command, confirmed: (the prompt's text, the reply's text)."""
        prompt = await person.ask(command)
        assert "confirm" in body(prompt), body(prompt)
        return body(prompt), await person.ask_body(f"!admin confirm {code_of(prompt)}")


@pytest.fixture(scope="module")
async def ess(homeserver: LocalHomeserver, tmp_root: Any) -> AsyncIterator[ESS]:
    async with running_standin(server_name=homeserver.server_name) as mas:
        world, people = await make_world(homeserver, tmp_root, "essbot")
        await mas.add_synapse_users(homeserver.url, world.bot.access_token)  # as after a migration with syn2mas
        client = mas.add_client(client_name="synapse-admin-bot")
        config = world.config(mas={"url": mas.url, "client_id": client.id, "client_secret": client.secret},
                              reports={"enabled": False})
        bot = BotRun(config)
        await bot.start()
        await people["admin"].chat.wait_for_join(world.admin_room, world.bot.user_id)
        http = httpx.AsyncClient(base_url=homeserver.url, headers={"Authorization": f"Bearer {world.bot.access_token}"})
        try:
            yield ESS(homeserver, mas, world, people, bot, http)
        finally:
            await bot.stop()
            await http.aclose()
            for person in people.values():
                await person.chat.close()


@pytest.fixture(autouse=True)
def described(ess: ESS) -> Any:
    """Every request the bot sent MAS, and every answer, matched MAS's published description."""
    yield
    assert not ess.mas.violations, "\n".join(ess.mas.take_violations())


def plain(reply: str) -> str:
    """A reply without the sign of its tone (✅, ❌ …), nor the undo line that ends a reversible action's."""
    text = reply.split(" ", 1)[1] if reply[:1] in "✅❌⚠ℹ" else reply
    return text.split("\n\nTo take it back: ", 1)[0]


def mas_requests(mas: MASStandIn, method: str, pattern: str) -> list[Any]:
    return [r for r in mas.requests if r.method == method and re.search(pattern, r.path)]


# -- each operation goes where the account lives


async def test_a_mas_account_is_locked_in_mas_and_a_bridge_user_in_synapse(ess: ESS) -> None:
    alice, alice_mas = await ess.account("alice")
    bridge = await ess.hs.register("telegram_4242-ess")  # an appservice's user: Synapse only, MAS never heard of it
    prompt, reply = await ess.confirm(ess.mod, f"!admin user lock {alice.user_id}")
    assert f"goes to: matrix-authentication-service (MAS user {alice_mas.id})" in prompt
    assert plain(reply) == f"{alice.user_id} is now locked in matrix-authentication-service."
    assert ess.mas.users[alice_mas.id].locked_at is not None
    assert ("provision_user", alice.localpart, {"locked": True}) in ess.mas.homeserver_calls
    assert (await ess.synapse(alice.user_id))["locked"] is False  # MAS tells Synapse; the bot did not go behind its back

    prompt, reply = await ess.confirm(ess.mod, f"!admin user lock {bridge.user_id}")
    assert "goes to: Synapse (MAS does not know this account: an appservice or bridge user)" in prompt
    assert plain(reply) == f"{bridge.user_id} is now locked."
    assert (await ess.synapse(bridge.user_id))["locked"] is True
    assert not mas_requests(ess.mas, "POST", r"/lock$")[1:]  # one MAS lock: alice's

    _, reply = await ess.confirm(ess.mod, f"!admin user lock {alice.user_id} --undo")
    assert plain(reply) == f"{alice.user_id} is no longer locked in matrix-authentication-service."
    assert ess.mas.users[alice_mas.id].locked_at is None
    _, reply = await ess.confirm(ess.mod, f"!admin user lock {bridge.user_id} --undo")
    assert (await ess.synapse(bridge.user_id))["locked"] is False
    prompt, reply = await ess.confirm(ess.mod, f"!admin user logout {bridge.user_id}")
    assert "goes to: Synapse (MAS does not know this account" in prompt and "1 devices will be logged out" in prompt
    assert (await ess.http.get(f"/_synapse/admin/v2/users/{bridge.user_id}/devices")).json()["total"] == 0


async def test_deactivation_tells_mas_not_to_erase_unless_erase_is_given(ess: ESS) -> None:
    bob, bob_mas = await ess.account("bob")
    ess.mas.add_email(bob_mas, "bob@example.org")
    prompt, reply = await ess.confirm(ess.admin, f"!admin user deactivate {bob.user_id}")
    assert "erase: no: MAS is told not to erase it (skip_erase: true); add --erase to erase it" in prompt
    assert "without erasing it" in reply
    assert mas_requests(ess.mas, "POST", rf"/users/{bob_mas.id}/deactivate$")[-1].body == {"skip_erase": True}
    assert ("delete_user", bob.localpart, {"erase": False}) in ess.mas.homeserver_calls
    assert ess.mas.users[bob_mas.id].deactivated_at is not None
    assert not [e for e in ess.mas.emails.values() if e.user_id == bob_mas.id]
    assert all(s.finished_at for s in ess.mas.compat_sessions.values() if s.user_id == bob_mas.id)

    carol, carol_mas = await ess.account("carol")
    prompt, reply = await ess.confirm(ess.admin, f"!admin user deactivate {carol.user_id} --erase")
    assert "erase: YES: MAS is told to erase it (skip_erase: false)" in prompt
    assert "and to ERASE it" in reply
    assert mas_requests(ess.mas, "POST", rf"/users/{carol_mas.id}/deactivate$")[-1].body == {"skip_erase": False}
    assert ("delete_user", carol.localpart, {"erase": True}) in ess.mas.homeserver_calls
    assert (await ess.synapse(carol.user_id))["deactivated"] is False  # MAS does that; Synapse was not asked directly

    reply = await ess.admin.ask_body(f"!admin user reactivate {bob.user_id}")
    assert f"Reactivated {bob.user_id} in matrix-authentication-service." in reply
    assert ess.mas.users[bob_mas.id].deactivated_at is None


async def test_a_password_reset_in_mas_logs_out_everywhere(ess: ESS) -> None:
    dave, dave_mas = await ess.account("dave")
    ess.mas.add_oauth2_session(dave_mas, user_agent="Element X")
    ess.mas.add_browser_session(dave_mas)
    # (typed: the admin's client does not encrypt, so a generated one could not reach them; nothing would be done)
    prompt, reply = await ess.confirm(ess.admin, f"!admin user reset-password {dave.user_id} Strong-typed-pw-77")
    assert "password: as typed (hidden)" in prompt and "Strong-typed-pw-77" not in prompt + reply
    assert "sessions: 3 active sessions end (log out everywhere)" in prompt
    assert f"New password set for {dave.user_id} in matrix-authentication-service; 3 sessions ended" in reply
    assert ess.mas.users[dave_mas.id].password and ess.mas.users[dave_mas.id].password != dave.password
    for table in (ess.mas.compat_sessions, ess.mas.oauth2_sessions, ess.mas.browser_sessions):
        assert all(s.finished_at for s in table.values() if s.user_id == dave_mas.id)
    assert (await ess.synapse(dave.user_id))["deactivated"] is False

    # A password MAS finds too weak: refused, and nothing else happens (no session ends).
    ess.mas.add_compat_session(dave_mas, device_id="NEWPHONE")
    prompt = await ess.admin.ask(f"!admin user reset-password {dave.user_id} weak")
    reply = await ess.admin.ask_body(f"!admin confirm {code_of(prompt)}")
    assert "MAS_BAD_REQUEST" in reply and "Password is too weak" in reply and "weak" not in reply.replace("too weak", "")
    assert [s for s in ess.mas.compat_sessions.values() if s.user_id == dave_mas.id and s.finished_at is None]


async def test_create_and_admin_rights_go_to_mas(ess: ESS) -> None:
    reply = await ess.admin.ask_body("!admin user create newbie-ess Newbie-pw-123 --displayname 'New Bie'")
    created = ess.mas.user_by_username("newbie-ess")
    assert created is not None and created.password and created.admin is False
    assert f"Created @newbie-ess:{ess.hs.server_name}" in reply and f"MAS user {created.id}" in reply
    assert ("provision_user", "newbie-ess", {"displayname": "New Bie"}) in ess.mas.homeserver_calls
    assert (await ess.http.get(f"/_synapse/admin/v2/users/@newbie-ess:{ess.hs.server_name}")).status_code == 404

    ess.mas.password_login_enabled = False  # an SSO-only deployment: a password would be of no use
    try:
        reply = await ess.admin.ask_body("!admin user create ssoonly-ess Sso-pw-12345")
    finally:
        ess.mas.password_login_enabled = True
    assert ess.mas.user_by_username("ssoonly-ess") is not None
    assert "no password was set" in reply and "Generated password" not in reply

    prompt, reply = await ess.confirm(ess.admin, "!admin user admin newbie-ess on")
    assert "allowed to request admin rights in matrix-authentication-service" in prompt
    assert ess.mas.users[created.id].admin is True
    _, reply = await ess.confirm(ess.admin, "!admin user admin newbie-ess off")
    assert "may no longer request admin rights" in reply and ess.mas.users[created.id].admin is False


async def test_undo_goes_where_the_account_lives(ess: ESS) -> None:
    """An undo runs the inverse command, which goes to MAS for an account MAS keeps: lock and admin
    rights are taken back there, and checked there before."""
    quinn, quinn_mas = await ess.account("quinn")
    _, locked = await ess.confirm(ess.mod, f"!admin user lock {quinn.user_id}")
    assert ess.mas.users[quinn_mas.id].locked_at is not None
    entry = re.search(r"!admin undo (\d+)", locked)
    assert entry, locked
    _, undone = await ess.confirm(ess.mod, f"!admin undo {entry.group(1)}")
    assert "no longer locked in matrix-authentication-service" in undone and "took back" in undone
    assert ess.mas.users[quinn_mas.id].locked_at is None
    assert (await ess.synapse(quinn.user_id))["locked"] is False

    _, granted = await ess.confirm(ess.admin, f"!admin user admin {quinn.user_id} on")
    assert ess.mas.users[quinn_mas.id].admin is True
    entry = re.search(r"!admin undo (\d+)", granted)
    assert entry, granted
    ess.mas.users[quinn_mas.id].admin = False  # changed in MAS meanwhile, without the bot
    refused = await ess.admin.ask_body(f"!admin undo {entry.group(1)}")
    assert f"it changed since #{entry.group(1)}: now {quinn.user_id} is not a server admin" in refused
    ess.mas.users[quinn_mas.id].admin = True
    _, undone = await ess.confirm(ess.admin, f"!admin undo {entry.group(1)}")
    assert "may no longer request admin rights" in undone and ess.mas.users[quinn_mas.id].admin is False


async def test_a_moderator_cannot_reach_a_mas_admin_through_mas_either(ess: ESS) -> None:
    frank, frank_mas = await ess.account("frank", admin=True)  # an admin in MAS, not in Synapse's own records
    assert (await ess.synapse(frank.user_id))["admin"] is False
    reply = await ess.mod.ask_body(f"!admin user lock {frank.user_id}")
    assert plain(reply).startswith("Refused:") and "may request admin rights in matrix-authentication-service" in reply
    reply = await ess.mod.ask_body(f"!admin user logout {frank.user_id}")
    assert plain(reply).startswith("Refused:")
    assert ess.mas.users[frank_mas.id].locked_at is None
    assert all(s.finished_at is None for s in ess.mas.compat_sessions.values() if s.user_id == frank_mas.id)


async def test_an_admin_by_mas_policy_data_is_staff(ess: ESS) -> None:
    """MAS lets the usernames of its policy data's `admin_users` request admin rights, whatever their
    `admin` flag: staff, out of a moderator's reach (issue 20, point 7)."""
    gina, gina_mas = await ess.account("gina")
    assert gina_mas.admin is False and (await ess.synapse(gina.user_id))["admin"] is False
    ess.mas.set_policy_data({"admin_clients": [], "admin_users": [gina_mas.username]})
    ess.bot.app.policy._mas_policy = None  # read at most once a minute: the test does not wait that long
    reply = await ess.mod.ask_body(f"!admin user lock {gina.user_id}")
    assert plain(reply).startswith("Refused:") and "may request admin rights in matrix-authentication-service" in reply
    assert ess.mas.users[gina_mas.id].locked_at is None
    assert any(r.path.endswith("/policy-data/latest") and r.status == 200 for r in ess.mas.requests)
    ess.mas.set_policy_data({"admin_users": []})
    ess.bot.app.policy._mas_policy = None


# -- sessions, e-mail addresses, links, personal sessions


async def test_sessions_page_past_one_page_and_outside_text_is_marked(ess: ESS) -> None:
    hank, hank_mas = await ess.account("hank")
    for i in range(12):
        ess.mas.add_compat_session(hank_mas, device_id=f"DEV{i:02d}", user_agent=f"client {i}")
    ess.mas.add_compat_session(hank_mas, device_id="OLD", finished=True)
    evil = ess.mas.add_client(client_name="Evil\u202eapp <b>bold</b>\nsecond line", admin=False,
                              grant_types=["authorization_code"])
    ess.mas.add_oauth2_session(hank_mas, client=evil, user_agent="Mozilla/5.0")
    ess.mas.add_browser_session(hank_mas, user_agent="Mozilla/5.0 " + "x" * 3000)  # clipped, not a wall of text
    active = {s.id for table in (ess.mas.compat_sessions, ess.mas.oauth2_sessions, ess.mas.browser_sessions)
              for s in table.values() if s.user_id == hank_mas.id and s.finished_at is None}
    assert len(active) == 15

    first = await ess.mod.ask(f"!admin user sessions {hank.user_id} --limit 10")
    text = body(first)
    assert "10 shown of 15" in text
    hint = re.search(r"(!admin user sessions \S+ --limit 10 --from \S+)", text)
    assert hint, text
    second = await ess.mod.ask(hint.group(1))
    rows = text.split("next page")[0] + body(second)
    seen = re.findall(r"\b[0-9A-HJKMNP-TV-Z]{26}\b", rows)
    assert set(seen) == active and len(seen) == 15  # every active session once, none that ended
    html = second["content"]["formatted_body"]
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html and "\u202e" not in body(second)
    assert "second line" in body(second) and "\nsecond line" not in body(second)
    assert "x" * 200 not in html and "Mozilla/5.0 xxx" in html
    assert len(mas_requests(ess.mas, "GET", r"/compat-sessions$")) >= 2

    everything = await ess.mod.ask_body(f"!admin user sessions {hank.user_id} --all --limit 100")
    assert "OLD" in everything


async def test_logging_out_one_session_or_everywhere(ess: ESS) -> None:
    ivy, ivy_mas = await ess.account("ivy")
    phone = ess.mas.add_compat_session(ivy_mas, device_id="PHONE")
    laptop = ess.mas.add_oauth2_session(ivy_mas, user_agent="Element X")
    jack, jack_mas = await ess.account("jack")
    jacks = next(s for s in ess.mas.compat_sessions.values() if s.user_id == jack_mas.id)

    reply = await ess.mod.ask_body(f"!admin user logout {ivy.user_id} --session {jacks.id}")
    assert f"session {jacks.id} is not a session of {ivy.user_id}" in reply
    assert ess.mas.compat_sessions[jacks.id].finished_at is None

    prompt, reply = await ess.confirm(ess.mod, f"!admin user logout {ivy.user_id} --session {phone.id}")
    assert "This session of" in prompt and "PHONE" in prompt
    assert ess.mas.compat_sessions[phone.id].finished_at is not None
    assert ess.mas.oauth2_sessions[laptop.id].finished_at is None

    prompt, reply = await ess.confirm(ess.mod, f"!admin user logout {ivy.user_id}")
    assert "(log out everywhere)" in prompt and "Element X" in prompt
    assert plain(reply).startswith("Ended 2 sessions of") and "(logged out everywhere)" in reply
    assert all(s.finished_at for table in (ess.mas.compat_sessions, ess.mas.oauth2_sessions)
               for s in table.values() if s.user_id == ivy_mas.id)
    assert ("sync_devices", ivy.localpart, {}) in ess.mas.homeserver_calls


async def test_email_addresses(ess: ESS) -> None:
    kim, kim_mas = await ess.account("kim")
    ess.mas.add_email(kim_mas, "kim@example.org")
    listing = await ess.mod.ask_body(f"!admin user emails {kim.user_id}")
    assert "kim@example.org" in listing
    refused = await ess.mod.ask_body(f"!admin user emails {kim.user_id} --add kim2@example.org")
    assert plain(refused).startswith("Refused:") and "admin role" in refused
    reply = await ess.admin.ask_body(f"!admin user emails {kim.user_id} --add kim2@example.org")
    assert "Added kim2@example.org" in reply
    assert {e.email for e in ess.mas.emails.values() if e.user_id == kim_mas.id} == {"kim@example.org", "kim2@example.org"}
    prompt, reply = await ess.confirm(ess.admin, f"!admin user emails {kim.user_id} --remove kim@example.org")
    assert "loses the address kim@example.org" in prompt and "1 other address(es) kept" in prompt
    assert {e.email for e in ess.mas.emails.values() if e.user_id == kim_mas.id} == {"kim2@example.org"}


async def test_personal_sessions_are_listed_and_revoked_never_created(ess: ESS) -> None:
    lee, lee_mas = await ess.account("lee")
    other, other_mas = await ess.account("leeother")
    ci, ci_token = ess.mas.add_personal_session(lee_mas, human_name="CI deploy")
    elsewhere, _ = ess.mas.add_personal_session(other_mas, human_name="not lee's")
    listing = await ess.mod.ask_body(f"!admin user personal-sessions {lee.user_id}")
    assert "CI deploy" in listing and ci.id in listing and elsewhere.id not in listing and ci_token not in listing
    reply = await ess.mod.ask_body(f"!admin user personal-sessions {lee.user_id} --revoke {elsewhere.id}")
    assert f"personal session {elsewhere.id} does not act as {lee.user_id}" in reply
    prompt, reply = await ess.confirm(ess.mod, f"!admin user personal-sessions {lee.user_id} --revoke {ci.id}")
    assert "Personal session to revoke" in prompt and "its token stops working at once" in prompt
    assert ess.mas.personal_sessions[ci.id].revoked_at is not None
    assert ess.mas.personal_sessions[elsewhere.id].revoked_at is None


async def test_one_accounts_upstream_links(ess: ESS) -> None:
    mia, mia_mas = await ess.account("mia")
    google, github = ess.mas.add_provider("Google Ess"), ess.mas.add_provider("GitHub Ess")
    ess.mas.add_link(mia_mas, google, "g-123", human_account_name="mia@gmail.example")
    kept = ess.mas.add_link(mia_mas, github, "gh-9")
    someone, someone_mas = await ess.account("miaother")
    theirs = ess.mas.add_link(someone_mas, google, "g-456")
    reply = await ess.admin.ask_body(f"!admin user external-ids {mia.user_id} --remove {theirs.id}")
    assert f"link {theirs.id} is not a link of {mia.user_id}" in reply and theirs.id in ess.mas.links
    listing = await ess.admin.ask_body(f"!admin user external-ids {mia.user_id}")
    assert "Google Ess" in listing and "mia@gmail.example" in listing and "GitHub Ess" in listing
    prompt, reply = await ess.confirm(ess.admin, f"!admin user external-ids {mia.user_id} --remove 'google ess'")
    assert "Removes 1 link(s)" in prompt and "GitHub Ess" in prompt
    assert "Removed 1 link(s)" in reply
    assert [link.id for link in ess.mas.links.values() if link.user_id == mia_mas.id] == [kept.id]


async def test_user_info_shows_what_mas_knows(ess: ESS) -> None:
    nora, nora_mas = await ess.account("nora")
    ess.mas.add_email(nora_mas, "nora\u202egro.elpmaxe@example.org")
    provider = ess.mas.add_provider("Nora IdP")
    ess.mas.add_link(nora_mas, provider, "n-1", human_account_name="<i>nora</i>")
    event = await ess.mod.ask(f"!admin user info {nora.user_id}")
    text, html = body(event), event["content"]["formatted_body"]
    assert f"MAS user: {nora_mas.id}" in text and "active sessions in MAS: 1" in text
    assert "\u202e" not in text and "&lt;i&gt;nora&lt;/i&gt;" in html and "<i>nora</i>" not in html
    bridge = await ess.hs.register("bridgeinfo-ess")
    assert "in MAS: no" in await ess.mod.ask_body(f"!admin user info {bridge.user_id}")


async def test_registration_tokens_live_in_mas(ess: ESS) -> None:
    reply = await ess.admin.ask_body("!admin token create welcome-ess --uses 3 --expires 7d")
    made = next(t for t in ess.mas.registration_tokens.values() if t.token == "welcome-ess")
    assert made.usage_limit == 3 and made.expires_at is not None and "matrix-authentication-service" in reply
    assert "welcome-ess" in await ess.mod.ask_body("!admin token list --valid")
    await ess.admin.ask_body("!admin token update welcome-ess --unlimited --never-expires")
    assert made.usage_limit is None and made.expires_at is None
    prompt, reply = await ess.confirm(ess.admin, "!admin token delete welcome-ess")
    assert "Token to revoke" in prompt and "Revoked registration token welcome-ess" in reply
    assert made.revoked_at is not None and made.id in ess.mas.registration_tokens
    await ess.admin.ask_body("!admin token unrevoke welcome-ess")
    assert made.revoked_at is None
    synapse_tokens = (await ess.http.get("/_synapse/admin/v1/registration_tokens")).json()["registration_tokens"]
    assert "welcome-ess" not in {t["token"] for t in synapse_tokens}


async def test_server_status_and_providers_show_mas(ess: ESS) -> None:
    text = await ess.admin.ask_body("!admin server status")
    assert f"version: {ess.mas.version}" in text and "Accounts: matrix-authentication-service" in text
    assert "password login" in text and "minimum password complexity: 3 of 4" in text
    ess.mas.add_provider("Status IdP")
    assert "Status IdP" in await ess.admin.ask_body("!admin server providers")


# -- a MAS that is down, or refuses the bot: a clear reply, and nothing changes anywhere


@pytest.mark.parametrize("how", ["refuse", "no-admin-api"])  # a 503 takes the refused connection's path
async def test_a_mas_that_is_down_changes_nothing(ess: ESS, how: str) -> None:
    olga, olga_mas = await ess.account(f"olga{how.replace('-', '')}")
    await ess.admin.ask_body(f"!admin user emails {olga.user_id}")  # the bot holds a token: only the admin API fails
    if how == "no-admin-api":
        ess.mas.admin_api_enabled = False  # a bare 404: never read as "MAS does not know this account"
    else:
        await ess.mas.go_down(how)
    try:
        # An admin: no staff check asks MAS first, so this is where the command goes that fails.
        reply = await ess.admin.ask_body(f"!admin user lock {olga.user_id}", timeout=60)
        refused = await ess.mod.ask_body(f"!admin user lock {olga.user_id}", timeout=60) if how == "refuse" else ""
    finally:
        ess.mas.admin_api_enabled = True
        await ess.mas.come_up()
    expected = {"refuse": "MAS_CONNECTION_FAILED", "no-admin-api": "MAS_NOT_FOUND"}[how]
    assert expected in reply and "confirm" not in reply, reply
    if refused:  # for a moderator, whether the account is staff cannot be told: the answer is no
        assert plain(refused).startswith("Refused:") and f"matrix-authentication-service did not say ({expected})" in refused
    assert (await ess.synapse(olga.user_id))["locked"] is False  # not sent to Synapse instead
    assert ess.mas.users[olga_mas.id].locked_at is None


async def test_a_mas_that_refuses_the_admin_scope_changes_nothing(ess: ESS) -> None:
    pat, pat_mas = await ess.account("pat")
    grants = len(ess.mas.token_requests)
    ess.mas.refuse_admin_scope = True
    ess.mas.revoke_tokens()  # the bot must ask for a new token, and MAS's policy says no
    try:
        reply = await ess.admin.ask_body(f"!admin user lock {pat.user_id}")
    finally:
        ess.mas.refuse_admin_scope = False
    assert "MAS_SCOPE_REFUSED" in reply and "policy.data.admin_clients" in reply, reply
    assert len(ess.mas.token_requests) > grants
    assert ess.mas.users[pat_mas.id].locked_at is None and (await ess.synapse(pat.user_id))["locked"] is False
    prompt, _ = await ess.confirm(ess.mod, f"!admin user lock {pat.user_id}")  # a new grant, and all is well again
    assert ess.mas.users[pat_mas.id].locked_at is not None


# -- removing one provider's links from every account: a job over MAS's cursors, across a restart


async def test_bulk_link_removal_resumes_after_a_restart_and_renews_its_token(ess: ESS) -> None:
    mas = ess.mas
    retired, kept_provider = mas.add_provider("Retired IdP"), mas.add_provider("Kept IdP")
    retired_links, kept_links = [], []
    for i in range(23):
        person = mas.add_user(f"sso-{i:02d}-ess")
        retired_links.append(mas.add_link(person, retired, f"old-{i}"))
        if i % 2:
            kept_links.append(mas.add_link(person, kept_provider, f"kept-{i}"))
    bot_user = mas.user_by_username(ess.world.bot.localpart)
    assert bot_user is not None
    bots_link = mas.add_link(bot_user, retired, "the-bot")  # the bot never acts on itself: skipped
    app = ess.bot.app
    assert app is not None

    mas.slow = lambda request: 0.1 if request.method == "DELETE" else 0.0  # the job cannot end between two looks
    prompt, started = await ess.confirm(ess.admin, "!admin user external-ids --all --remove 'Retired IdP'")
    assert "24 links to Retired IdP" in prompt and "removed from every account" in prompt
    assert started.startswith("Job #")
    job_id = int(started.split()[1].lstrip("#"))
    grants = len(mas.token_requests)
    await _until(lambda: _batches(app, job_id), 1)
    # The bot's client-credentials token expires mid-run; once the bot has a new one, MAS stops
    # answering removals, and the bot is stopped mid-job.
    mas.hold = lambda request: request.method == "DELETE" and len(mas.token_requests) > grants
    mas.advance(mas.token_ttl + 60)
    await _until(_async(lambda: mas.held), 1)
    await ess.bot.stop()
    mas.hold = mas.slow = None
    db, store = await wiring.open_store(ess.bot.config)  # what the stopped bot left on disk
    try:
        done_before = await store.jobs.get_job(job_id)
    finally:
        await db.close()
    assert done_before.status == "running" and _batches_of(done_before) >= 1
    assert len(mas.token_requests) > grants  # a new token was granted during the run

    app = await ess.bot.start(job_poll_interval=0.05)
    record = await _until_finished(app, job_id)
    assert record.status == "done", record.result_text
    assert "links removed: 23" in record.result_text and "skipped (protected): 1" in record.result_text
    left = {link.id for link in mas.links.values() if link.provider_id == retired.id}
    assert left == {bots_link.id}
    assert {link.id for link in mas.links.values() if link.provider_id == kept_provider.id} == {k.id for k in kept_links}
    for link in retired_links:  # removed exactly once each, across the restart (a 401 for the expired token is retried)
        answers = [r.status for r in mas_requests(mas, "DELETE", rf"/upstream-oauth-links/{link.id}$")]
        assert answers.count(204) == 1 and set(answers) <= {204, 401}, answers
    assert not mas_requests(mas, "DELETE", rf"/upstream-oauth-links/{bots_link.id}$")
    assert any(("page[after]", c) in r.query for r in mas_requests(mas, "GET", r"/upstream-oauth-links$")
               for c in [done_before.state["bulk"]["cursor"]])  # the resumed run went on from the saved cursor
    await ess.admin.chat.wait_for_join(ess.world.admin_room, ess.world.bot.user_id)


async def _record(app: App, job_id: int) -> Any:
    return await app.stores.jobs.get_job(job_id)


def _batches_of(record: Any) -> int:
    return int(record.state.get("bulk", {}).get("batches", 0)) if record else 0


async def _batches(app: App, job_id: int) -> int:
    return _batches_of(await _record(app, job_id))


async def _until(value: Any, at_least: int, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await value() >= at_least:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached {at_least} in {timeout}s")


def _async(read: Callable[[], int]) -> Callable[[], Awaitable[int]]:
    async def value() -> int:
        return read()
    return value


async def _until_finished(app: App, job_id: int, timeout: float = 60.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        record = await _record(app, job_id)
        if record is not None and record.status != "running":
            return record
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish")
