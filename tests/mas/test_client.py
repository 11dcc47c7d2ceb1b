"""Every method of the MAS admin API client against the stand-in MAS, asserting the effect on its state.

The `mas` fixture fails any test after which the stand-in saw a request (or gave an answer) that
does not match MAS's published API description.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

from bot.homeserver.mas_api import (
    MASAPI,
    MASHTTP,
    BadRequest,
    Conflict,
    Forbidden,
    InvalidIdentifier,
    NotFound,
    StaticToken,
    walk,
)
from tests.support.mas_standin import MASStandIn


@pytest.fixture
async def api(mas: MASStandIn) -> AsyncIterator[MASAPI]:
    token = mas.issue_token()
    client = MASAPI(MASHTTP(mas.url, StaticToken(lambda: token), max_retries=0))
    yield client
    await client.aclose()


def last_body(mas: MASStandIn) -> object:
    return mas.requests[-1].body


# -- server


async def test_version_and_site_config(api: MASAPI, mas: MASStandIn) -> None:
    assert await api.version() == mas.version
    config = await api.site_config()
    assert config.server_name == mas.server_name and config.password_login_enabled is True
    assert config.minimum_password_complexity == 3


# -- users


async def test_get_user_by_id_by_username_and_by_matrix_id(api: MASAPI, mas: MASStandIn) -> None:
    alice = mas.add_user("alice", admin=True)
    by_id = await api.get_user(alice.id)
    assert (by_id.id, by_id.username, by_id.admin, by_id.locked, by_id.deactivated) == (alice.id, "alice", True, False, False)
    assert by_id.created_at is not None and by_id.created_at.tzinfo is not None
    assert (await api.get_user_by_username("alice")).id == alice.id
    assert (await api.user_for_matrix_id("@alice:example.org", server_name="example.org")).id == alice.id
    with pytest.raises(NotFound) as info:
        await api.user_for_matrix_id("@bridge_bot:example.org", server_name="example.org")
    assert info.value.status == 404 and "bridge_bot" in info.value.error
    # A remote user has no MAS account here: refused before any request.
    before = len(mas.requests)
    with pytest.raises(InvalidIdentifier):
        await api.user_for_matrix_id("@alice:elsewhere.org", server_name="example.org")
    with pytest.raises(InvalidIdentifier):
        await api.get_user("@alice:example.org")
    assert len(mas.requests) == before


async def test_list_users_with_filters(api: MASAPI, mas: MASStandIn) -> None:
    alice = mas.add_user("alice", admin=True)
    bob = mas.add_user("bob", locked=True)
    carol = mas.add_user("carol", deactivated=True)
    dave = mas.add_user("dave")
    mas.add_compat_session(dave)
    element = mas.add_client(client_name="Element X", admin=False, grant_types=["authorization_code"])
    mas.add_oauth2_session(alice, client=element)

    everyone = await api.list_users()
    assert [u.username for u in everyone.items] == ["alice", "bob", "carol", "dave"]
    assert everyone.count == 4 and everyone.next_cursor is None
    assert [u.username for u in (await api.list_users(admin=True)).items] == ["alice"]
    assert [u.username for u in (await api.list_users(status="active")).items] == ["alice", "dave"]
    # MAS's "locked" includes deactivated users (deactivation locks too)
    assert [u.username for u in (await api.list_users(status="locked")).items] == ["bob", "carol"]
    assert [u.username for u in (await api.list_users(status="deactivated")).items] == ["carol"]
    assert [u.username for u in (await api.list_users(search="aro")).items] == ["carol"]
    assert [u.username for u in (await api.list_users(has_active_compat_session=True)).items] == ["dave"]
    assert [u.username for u in (await api.list_users(has_active_oauth2_session=True)).items] == ["alice"]
    assert [u.username for u in (await api.list_users(active_oauth2_clients=[element.id])).items] == ["alice"]
    assert [u.username for u in (await api.list_users(legacy_guest=False, count=False)).items][:1] == ["alice"]
    assert (await api.list_users(count=False)).count is None
    assert {bob.id, carol.id} <= {u.id for u in (await api.list_users(status="locked")).items}
    sent = dict(mas.requests[-1].query)
    assert sent == {"filter[status]": "locked"}


async def test_cursor_paging_past_one_page(api: MASAPI, mas: MASStandIn) -> None:
    created = [mas.add_user(f"user{i:02d}") for i in range(25)]
    first = await api.list_users(first=10)
    assert [u.id for u in first.items] == [u.id for u in created[:10]]
    assert first.count == 25 and first.next_cursor == created[9].id
    assert dict(mas.requests[-1].query) == {"page[first]": "10"}
    second = await api.list_users(first=10, after=first.next_cursor)
    assert [u.id for u in second.items] == [u.id for u in created[10:20]]
    assert dict(mas.requests[-1].query) == {"page[first]": "10", "page[after]": created[9].id}
    third = await api.list_users(first=10, after=second.next_cursor)
    assert [u.id for u in third.items] == [u.id for u in created[20:]] and third.next_cursor is None
    # walk() follows the cursor to the end; MAS's own default page is 10 items
    walked = [u.username async for u in walk(lambda cursor: api.list_users(after=cursor))]
    assert walked == [u.username for u in created]
    with pytest.raises(ValueError):
        await api.list_users(first=0)


async def test_create_user(api: MASAPI, mas: MASStandIn) -> None:
    user = await api.create_user("newcomer", displayname="New Comer")
    assert mas.users[user.id].username == "newcomer"
    assert ("provision_user", "newcomer", {"displayname": "New Comer"}) in mas.homeserver_calls
    with pytest.raises(Conflict) as info:
        await api.create_user("newcomer")
    assert info.value.status == 409 and info.value.errcode == "MAS_CONFLICT"
    mas.reserved_usernames.add("taken")
    with pytest.raises(Conflict):
        await api.create_user("taken")
    assert (await api.create_user("taken", skip_homeserver_check=True)).username == "taken"
    assert last_body(mas) == {"username": "taken", "skip_homeserver_check": True}
    with pytest.raises(InvalidIdentifier):
        await api.create_user("Not Valid")


async def test_set_password(api: MASAPI, mas: MASStandIn) -> None:
    alice = mas.add_user("alice")
    await api.set_user_password(alice.id, "correct horse battery staple")
    assert mas.users[alice.id].password == "correct horse battery staple"
    with pytest.raises(BadRequest) as info:
        await api.set_user_password(alice.id, "weak")
    assert "too weak" in info.value.error
    await api.set_user_password(alice.id, "weak", skip_password_check=True)
    assert mas.users[alice.id].password == "weak"
    with pytest.raises(NotFound):
        await api.set_user_password("01ARZ3NDEKTSV4RRFFQ69G5FAV", "correct horse battery staple")
    mas.password_login_enabled = False
    with pytest.raises(Forbidden):
        await api.set_user_password(alice.id, "correct horse battery staple")


async def test_set_admin(api: MASAPI, mas: MASStandIn) -> None:
    alice = mas.add_user("alice")
    assert (await api.set_user_admin(alice.id, admin=True)).admin is True
    assert mas.users[alice.id].admin is True and last_body(mas) == {"admin": True}
    assert (await api.set_user_admin(alice.id, admin=False)).admin is False
    assert mas.users[alice.id].admin is False


async def test_deactivate_sends_skip_erase_explicitly_either_way(api: MASAPI, mas: MASStandIn) -> None:
    keep = mas.add_user("keep")
    mas.add_email(keep, "keep@example.org")
    compat = mas.add_compat_session(keep)
    browser = mas.add_browser_session(keep)
    personal, _ = mas.add_personal_session(keep)
    user = await api.deactivate_user(keep.id, skip_erase=True)
    assert user.deactivated and last_body(mas) == {"skip_erase": True}
    assert ("delete_user", "keep", {"erase": False}) in mas.homeserver_calls
    # MAS ends every session and drops the addresses
    assert mas.compat_sessions[compat.id].finished_at is not None
    assert mas.browser_sessions[browser.id].finished_at is not None
    assert mas.personal_sessions[personal.id].revoked_at is not None
    assert not [e for e in mas.emails.values() if e.user_id == keep.id]

    erase = mas.add_user("erase")
    await api.deactivate_user(erase.id, skip_erase=False)
    # False is sent too: nothing is left to MAS's default (which erases)
    assert last_body(mas) == {"skip_erase": False}
    assert ("delete_user", "erase", {"erase": True}) in mas.homeserver_calls


async def test_deactivate_demands_a_decision_about_erasing(api: MASAPI, mas: MASStandIn) -> None:
    user = mas.add_user("undecided")
    with pytest.raises(TypeError):
        await api.deactivate_user(user.id)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        await api.deactivate_user(user.id, skip_erase=None)  # type: ignore[arg-type]
    assert mas.users[user.id].deactivated_at is None


async def test_reactivate_lock_unlock(api: MASAPI, mas: MASStandIn) -> None:
    gone = mas.add_user("gone", deactivated=True)
    assert (await api.reactivate_user(gone.id)).deactivated is False
    assert mas.users[gone.id].deactivated_at is None and ("reactivate_user", "gone", {}) in mas.homeserver_calls
    target = mas.add_user("target")
    assert (await api.lock_user(target.id)).locked is True
    assert mas.users[target.id].locked_at is not None
    assert (await api.unlock_user(target.id)).locked is False
    assert mas.users[target.id].locked_at is None
    with pytest.raises(NotFound):
        await api.lock_user("01ARZ3NDEKTSV4RRFFQ69G5FAV")


# -- sessions


async def test_compat_sessions(api: MASAPI, mas: MASStandIn) -> None:
    alice, bob = mas.add_user("alice"), mas.add_user("bob")
    phone = mas.add_compat_session(alice, device_id="PHONE", user_agent="Element Android")
    mas.add_compat_session(alice, finished=True)
    mas.add_compat_session(bob)
    listed = await api.list_compat_sessions(user=alice.id, status="active")
    assert [(s.id, s.device_id, s.user_agent, s.last_active_ip) for s in listed.items] == [
        (phone.id, "PHONE", "Element Android", "192.0.2.10")]
    assert (await api.list_compat_sessions(user=alice.id)).count == 2
    assert (await api.list_compat_sessions(status="finished")).count == 1
    long_ago = datetime.now(timezone.utc) - timedelta(days=1)
    assert (await api.list_compat_sessions(created_after=long_ago, last_active_after=long_ago)).count == 3
    assert (await api.list_compat_sessions(created_before=long_ago)).count == 0
    assert (await api.get_compat_session(phone.id)).active
    finished = await api.finish_compat_session(phone.id)
    assert not finished.active and mas.compat_sessions[phone.id].finished_at is not None
    with pytest.raises(BadRequest):
        await api.finish_compat_session(phone.id)
    with pytest.raises(NotFound):
        await api.list_compat_sessions(user="01ARZ3NDEKTSV4RRFFQ69G5FAV")


async def test_oauth2_sessions(api: MASAPI, mas: MASStandIn) -> None:
    alice = mas.add_user("alice")
    element = mas.add_client(client_name="Element X", admin=False, grant_types=["authorization_code"])
    session = mas.add_oauth2_session(alice, client=element, scope="openid urn:matrix:client:api:*", user_agent="Element X")
    other = mas.add_oauth2_session(alice, scope="openid")
    listed = await api.list_oauth2_sessions(user=alice.id, clients=[element.id], scopes=["urn:matrix:client:api:*"],
                                            client_kind="static", status="active")
    assert [s.id for s in listed.items] == [session.id]
    assert listed.items[0].client_id == element.id and listed.items[0].user_agent == "Element X"
    assert sorted(s.id for s in (await api.list_oauth2_sessions(user=alice.id)).items) == sorted([session.id, other.id])
    assert dict(mas.requests[-1].query) == {"filter[user]": alice.id}
    assert (await api.get_oauth2_session(session.id)).scope == "openid urn:matrix:client:api:*"
    assert not (await api.finish_oauth2_session(session.id)).active
    assert mas.oauth2_sessions[session.id].finished_at is not None
    with pytest.raises(BadRequest):
        await api.finish_oauth2_session(session.id)


async def test_browser_sessions(api: MASAPI, mas: MASStandIn) -> None:
    alice = mas.add_user("alice")
    browser = mas.add_browser_session(alice, user_agent="Firefox")
    mas.add_browser_session(alice, finished=True)
    listed = await api.list_user_sessions(user=alice.id, status="active")
    assert [(s.id, s.user_agent) for s in listed.items] == [(browser.id, "Firefox")]
    assert (await api.get_user_session(browser.id)).active
    assert not (await api.finish_user_session(browser.id)).active
    assert mas.browser_sessions[browser.id].finished_at is not None
    with pytest.raises(BadRequest):
        await api.finish_user_session(browser.id)


async def test_personal_sessions_list_get_revoke(api: MASAPI, mas: MASStandIn) -> None:
    alice = mas.add_user("alice")
    session, token = mas.add_personal_session(alice, human_name="backup script", expires_in=3600)
    mas.add_personal_session(alice, revoked=True)
    listed = await api.list_personal_sessions(actor_user=alice.id, status="active", expires=True)
    assert [(s.id, s.human_name) for s in listed.items] == [(session.id, "backup script")]
    assert (await api.list_personal_sessions(owner_user=alice.id)).count == 2
    got = await api.get_personal_session(session.id)
    assert got.active and got.expires_at is not None
    assert not hasattr(got, "access_token")
    revoked = await api.revoke_personal_session(session.id)
    assert not revoked.active and mas.tokens[token].revoked
    with pytest.raises(Conflict):
        await api.revoke_personal_session(session.id)
    assert not any(hasattr(api, name) for name in ("create_personal_session", "regenerate_personal_session"))


# -- e-mail addresses


async def test_user_emails(api: MASAPI, mas: MASStandIn) -> None:
    alice, bob = mas.add_user("alice"), mas.add_user("bob")
    mas.add_email(bob, "bob@example.org")
    added = await api.add_user_email(alice.id, "alice@example.org")
    assert added.email == "alice@example.org" and mas.emails[added.id].user_id == alice.id
    assert [e.email for e in (await api.list_user_emails(user=alice.id)).items] == ["alice@example.org"]
    assert [e.user_id for e in (await api.list_user_emails(email="bob@example.org")).items] == [bob.id]
    assert (await api.get_user_email(added.id)).user_id == alice.id
    with pytest.raises(Conflict):
        await api.add_user_email(alice.id, "bob@example.org")
    await api.delete_user_email(added.id)
    assert added.id not in mas.emails
    with pytest.raises(NotFound):
        await api.delete_user_email(added.id)


# -- upstream providers and links


async def test_upstream_providers_and_links(api: MASAPI, mas: MASStandIn) -> None:
    alice, bob = mas.add_user("alice"), mas.add_user("bob")
    google = mas.add_provider("Google", brand_name="google")
    mas.add_provider("Legacy", disabled=True)
    providers = await api.list_upstream_oauth_providers(enabled=True)
    assert [(p.id, p.human_name, p.enabled) for p in providers.items] == [(google.id, "Google", True)]
    assert (await api.get_upstream_oauth_provider(google.id)).brand_name == "google"

    link = await api.add_upstream_oauth_link(alice.id, google.id, "sub-alice", human_account_name="alice@gmail")
    assert mas.links[link.id].user_id == alice.id
    assert last_body(mas) == {"user_id": alice.id, "provider_id": google.id, "subject": "sub-alice",
                              "human_account_name": "alice@gmail"}
    mas.add_link(bob, google, "sub-bob", human_account_name="bob@gmail")
    by_provider = await api.list_upstream_oauth_links(provider=google.id)
    assert sorted(x.subject for x in by_provider.items) == ["sub-alice", "sub-bob"]
    assert [x.subject for x in (await api.list_upstream_oauth_links(user=bob.id)).items] == ["sub-bob"]
    assert [x.subject for x in (await api.list_upstream_oauth_links(subject="sub-alice")).items] == ["sub-alice"]
    assert [x.subject for x in (await api.list_upstream_oauth_links(human_account_name="BOB@")).items] == ["sub-bob"]
    assert (await api.get_upstream_oauth_link(link.id)).provider_id == google.id
    with pytest.raises(Conflict):
        await api.add_upstream_oauth_link(bob.id, google.id, "sub-alice")
    await api.delete_upstream_oauth_link(link.id)
    assert link.id not in mas.links


async def test_removing_one_providers_links_from_everyone_pages_through_all(api: MASAPI, mas: MASStandIn) -> None:
    """The MAS form of `user external-ids --all --remove <provider>`, as phase 2's bulk job will do it."""
    google, github = mas.add_provider("Google"), mas.add_provider("GitHub")
    for i in range(23):
        user = mas.add_user(f"u{i:02d}")
        mas.add_link(user, google, f"g-{i}")
        mas.add_link(user, github, f"h-{i}")
    doomed = [link.id async for link in walk(lambda c: api.list_upstream_oauth_links(provider=google.id, first=10, after=c))]
    assert len(doomed) == 23
    for link_id in doomed:
        await api.delete_upstream_oauth_link(link_id)
    assert {link.provider_id for link in mas.links.values()} == {github.id} and len(mas.links) == 23


# -- registration tokens


async def test_registration_tokens(api: MASAPI, mas: MASStandIn) -> None:
    spent = mas.add_registration_token("spent", usage_limit=1, times_used=1)
    created = await api.add_registration_token(token="welcome", usage_limit=5,
                                               expires_at=datetime.now(timezone.utc) + timedelta(days=7))
    assert created.valid and created.usage_limit == 5 and created.expires_at is not None
    assert mas.registration_tokens[created.id].token == "welcome"
    drawn = await api.add_registration_token()
    assert len(drawn.token) == 12 and last_body(mas) == {}
    with pytest.raises(Conflict):
        await api.add_registration_token(token="welcome")

    assert {t.token for t in (await api.list_registration_tokens(valid=True)).items} == {"welcome", drawn.token}
    assert [t.token for t in (await api.list_registration_tokens(used=True)).items] == ["spent"]
    assert (await api.get_registration_token(spent.id)).valid is False
    assert (await api.registration_token_by_value("welcome")).id == created.id
    with pytest.raises(NotFound):
        await api.registration_token_by_value("nope")

    updated = await api.update_registration_token(created.id, usage_limit=None)
    assert updated.usage_limit is None and updated.expires_at is not None and last_body(mas) == {"usage_limit": None}
    updated = await api.update_registration_token(created.id, expires_at=None, usage_limit=2)
    assert (updated.usage_limit, updated.expires_at) == (2, None)
    assert (mas.registration_tokens[created.id].usage_limit, mas.registration_tokens[created.id].expires_at) == (2, None)

    assert (await api.revoke_registration_token(created.id)).revoked_at is not None
    assert (await api.list_registration_tokens(revoked=True)).items[0].id == created.id
    with pytest.raises(BadRequest):
        await api.revoke_registration_token(created.id)
    assert (await api.unrevoke_registration_token(created.id)).revoked_at is None
    with pytest.raises(BadRequest):
        await api.unrevoke_registration_token(created.id)
    assert (await api.list_registration_tokens(expired=False, count=True)).count == 3


# -- OAuth 2.0 clients (names for the sessions)


async def test_oauth2_clients(api: MASAPI, mas: MASStandIn) -> None:
    element = mas.add_client(client_name="Element X", admin=False, grant_types=["authorization_code", "refresh_token"])
    listed = await api.list_oauth2_clients()
    assert element.id in [c.id for c in listed.items]
    got = await api.get_oauth2_client(element.id)
    assert (got.client_name, got.grant_types, got.is_static) == ("Element X", ("authorization_code", "refresh_token"), True)
