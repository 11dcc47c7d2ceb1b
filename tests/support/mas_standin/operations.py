"""What the stand-in MAS does for each operation of the admin API, as MAS's handlers do
(crates/handlers/src/admin/v1/): a mixin of `MASStandIn`, one `op_<operationId>` per operation."""

from __future__ import annotations

import json
import string
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from .records import (
    PREFIX,
    Answer,
    BrowserSession,
    Client,
    CompatSession,
    Email,
    Link,
    OAuth2Session,
    PersonalSession,
    Provider,
    RegistrationToken,
    User,
    parse_rfc3339,
    random_token,
    rfc3339,
)

DEFAULT_PAGE_SIZE = 10  # MAS: crates/handlers/src/admin/params.rs


class Operations:
    """The admin API's operations over the stand-in's state (kept by `MASStandIn`)."""

    users: dict[str, User]
    policy_data: dict[str, Any] | None
    policy_data_id: str
    compat_sessions: dict[str, CompatSession]
    oauth2_sessions: dict[str, OAuth2Session]
    browser_sessions: dict[str, BrowserSession]
    personal_sessions: dict[str, PersonalSession]
    emails: dict[str, Email]
    providers: dict[str, Provider]
    links: dict[str, Link]
    registration_tokens: dict[str, RegistrationToken]
    clients: dict[str, Client]
    tokens: dict[str, Any]
    homeserver_calls: list[tuple[str, str, dict[str, Any]]]
    reserved_usernames: set[str]
    password_login_enabled: bool
    server_name: str
    version: str

    def now(self) -> datetime:
        raise NotImplementedError

    def user_by_username(self, username: str) -> User | None:
        raise NotImplementedError

    def add_user(self, username: str, **options: Any) -> User:
        raise NotImplementedError

    def add_email(self, user: User, email: str) -> Email:
        raise NotImplementedError

    def add_link(self, user: User | None, provider: Provider, subject: str, *, human_account_name: str | None = None) -> Link:
        raise NotImplementedError

    # -- answer builders

    def _resource(self, item: Any) -> dict[str, Any]:
        base = f"{PREFIX}/{_collection(item.kind)}/{item.id}"
        attributes = item.attributes(self.now()) if isinstance(item, RegistrationToken) else item.attributes()
        return {"type": item.kind, "id": item.id, "attributes": attributes, "links": {"self": base}}

    def _single(self, item: Any, self_link: str | None = None) -> dict[str, Any]:
        resource = self._resource(item)
        return {"data": resource, "links": {"self": self_link or resource["links"]["self"]}}

    def _page(self, items: list[Any], params: dict[str, Any], base: str) -> dict[str, Any]:
        # MAS: crates/storage/src/pagination.rs + crates/handlers/src/admin/response.rs
        first, last = params.get("page[first]"), params.get("page[last]")
        if first is not None and last is not None:
            raise Answer(400, "Cannot specify both `page[first]` and `page[last]` parameters")
        after, before = params.get("page[after]"), params.get("page[before]")
        ordered = sorted(items, key=lambda i: i.id)
        if after is not None:
            ordered = [i for i in ordered if i.id > after]
        if before is not None:
            ordered = [i for i in ordered if i.id < before]
        size = last or first or DEFAULT_PAGE_SIZE
        has_next = has_previous = False
        if last is not None:
            has_previous = len(ordered) > size
            edges = ordered[-size:]
        else:
            has_next = len(ordered) > size
            edges = ordered[:size]
        include = params.get("count", "true")
        filters = {k: v for k, v in params.items() if k.startswith("filter[")}
        query_base = base + ("?" + urlencode(_flatten(filters)) if filters else "")
        if include == "only":
            return {"meta": {"count": len(items)}, "links": {"self": query_base}}
        direction = f"page[last]={size}" if last is not None else f"page[first]={size}"
        link = lambda extra: query_base + ("&" if "?" in query_base else "?") + extra  # noqa: E731
        links: dict[str, Any] = {"self": link(direction), "first": link(f"page[first]={size}"), "last": link(f"page[last]={size}")}
        if has_next:
            links["next"] = link(f"page[after]={edges[-1].id}&page[first]={size}")
        if has_previous:
            links["prev"] = link(f"page[before]={edges[0].id}&page[last]={size}")
        data = []
        for item in edges:
            resource = self._resource(item)
            resource["meta"] = {"page": {"cursor": item.id}}
            data.append(resource)
        answer: dict[str, Any] = {"data": data, "links": links}
        if include != "false":
            answer["meta"] = {"count": len(items)}
        return answer

    def _get(self, table: dict[str, Any], key: str, what: str) -> Any:
        item = table.get(key)
        if item is None:
            raise Answer(404, f"{what} ID {key} not found")
        return item

    def _known_user(self, params: dict[str, Any], key: str = "filter[user]") -> str | None:
        user_id = params.get(key)
        if user_id is not None and user_id not in self.users:
            raise Answer(404, f"User ID {user_id} not found")
        return user_id

    # -- server

    def op_version(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, {"version": self.version}

    def op_siteConfig(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, {"server_name": self.server_name, "password_login_enabled": self.password_login_enabled,
                     "password_registration_enabled": False, "password_registration_email_required": True,
                     "password_registration_token_required": False, "registration_token_required": False,
                     "email_change_allowed": True, "displayname_change_allowed": True, "password_change_allowed": True,
                     "account_recovery_allowed": False, "account_deactivation_allowed": True, "captcha_enabled": False,
                     "minimum_password_complexity": 3}

    def set_policy_data(self, data: dict[str, Any]) -> None:
        """As `POST /api/admin/v1/policy-data` (or mas-cli) would: the latest policy data."""
        self.policy_data, self.policy_data_id = data, self.ids.new()

    def op_getLatestPolicyData(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        # MAS: crates/handlers/src/admin/v1/policy_data/get_latest.rs
        if self.policy_data is None:
            raise Answer(404, "No policy data found")
        link = f"{PREFIX}/policy-data/{self.policy_data_id}"
        return 200, {"data": {"type": "policy-data", "id": self.policy_data_id, "links": {"self": link},
                              "attributes": {"created_at": rfc3339(self.now()), "data": self.policy_data}},
                     "links": {"self": link}}

    # -- users

    def op_listUsers(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        users = list(self.users.values())
        if params.get("filter[admin]") is not None:
            users = [u for u in users if u.admin == params["filter[admin]"]]
        if params.get("filter[legacy-guest]") is not None:
            users = [u for u in users if u.legacy_guest == params["filter[legacy-guest]"]]
        if params.get("filter[search]"):
            users = [u for u in users if params["filter[search]"].lower() in u.username.lower()]
        status = params.get("filter[status]")
        if status == "active":
            users = [u for u in users if u.locked_at is None and u.deactivated_at is None]
        elif status == "locked":
            users = [u for u in users if u.locked_at is not None]
        elif status == "deactivated":
            users = [u for u in users if u.deactivated_at is not None]
        clients = params.get("filter[active-oauth2-client]") or []
        for client_id in clients:
            if client_id not in self.clients:
                raise Answer(404, f"Client ID {client_id} not found")
        if clients:
            holders = {s.user_id for s in self.oauth2_sessions.values() if s.finished_at is None and s.client_id in clients}
            users = [u for u in users if u.id in holders]
        if params.get("filter[has-active-oauth2-session]") is not None:
            holders = {s.user_id for s in self.oauth2_sessions.values() if s.finished_at is None}
            users = [u for u in users if (u.id in holders) == params["filter[has-active-oauth2-session]"]]
        if params.get("filter[has-active-compat-session]") is not None:
            holders = {s.user_id for s in self.compat_sessions.values() if s.finished_at is None}
            users = [u for u in users if (u.id in holders) == params["filter[has-active-compat-session]"]]
        return 200, self._page(users, params, f"{PREFIX}/users")

    def op_getUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.users, params["id"], "User"))

    def op_getUserByUsername(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self.user_by_username(params["username"])
        if user is None:
            raise Answer(404, f"User with username {json.dumps(params['username'])} not found")
        return 200, self._single(user, path)

    def op_createUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        username = body["username"]
        if self.user_by_username(username) is not None:
            raise Answer(409, "User already exists")
        allowed = set(string.ascii_lowercase + string.digits + "=_-./+")
        if not username or len(username) > 255 or username.startswith("_") or not set(username) <= allowed:
            raise Answer(400, "Username is not valid")
        if username in self.reserved_usernames and not body.get("skip_homeserver_check"):
            raise Answer(409, "Username is reserved by the homeserver")
        user = self.add_user(username)
        self.homeserver_calls.append(("provision_user", username, {k: body[k] for k in ("displayname", "avatar_url") if k in body}))
        return 201, self._single(user)

    def op_setUserPassword(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        if not self.password_login_enabled:
            raise Answer(403, "Password auth is disabled")
        user = self._get(self.users, params["id"], "User")
        # A stand-in for zxcvbn's score: MAS refuses weak passwords unless told to skip the check.
        if not body.get("skip_password_check") and len(body["password"]) < 10:
            raise Answer(400, "Password is too weak")
        user.password = body["password"]
        return 204, None

    def op_userSetAdmin(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        user.admin = body["admin"]
        return 200, self._single(user, path)

    def op_deactivateUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        now = self.now()
        if user.deactivated_at is None:
            user.deactivated_at = now
        # MAS's DeactivateUserJob (crates/tasks/src/user.rs): end every session, drop the e-mail
        # addresses, then ask the homeserver to deactivate, erasing unless told to skip it.
        for table in (self.browser_sessions, self.oauth2_sessions, self.compat_sessions):
            for session in table.values():
                if session.user_id == user.id and session.finished_at is None:
                    session.finished_at = now
        for session in self.personal_sessions.values():
            if user.id in (session.actor_user_id, session.owner_user_id) and session.revoked_at is None:
                session.revoked_at = now
        for email_id in [e.id for e in self.emails.values() if e.user_id == user.id]:
            del self.emails[email_id]
        erase = not body.get("skip_erase", False)
        self.homeserver_calls.append(("delete_user", user.username, {"erase": erase}))
        return 200, self._single(user, path)

    def op_reactivateUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        self.homeserver_calls.append(("reactivate_user", user.username, {}))
        user.deactivated_at = None
        return 200, self._single(user, path)

    def op_lockUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        if user.locked_at is None:
            user.locked_at = self.now()
        self.homeserver_calls.append(("provision_user", user.username, {"locked": True}))
        return 200, self._single(user, path)

    def op_unlockUser(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self._get(self.users, params["id"], "User")
        user.locked_at = None
        self.homeserver_calls.append(("provision_user", user.username, {"locked": False}))
        return 200, self._single(user, path)

    # -- sessions

    def _activity_filters(self, sessions: list[Any], params: dict[str, Any]) -> list[Any]:
        for key, attribute, keep in (
            ("filter[created-before]", "created_at", lambda v, t: v is not None and v < t),
            ("filter[created-after]", "created_at", lambda v, t: v is not None and v > t),
            ("filter[last-active-before]", "last_active_at", lambda v, t: v is not None and v < t),
            ("filter[last-active-after]", "last_active_at", lambda v, t: v is not None and v > t),
        ):
            if params.get(key):
                moment = parse_rfc3339(params[key])
                sessions = [s for s in sessions if keep(getattr(s, attribute), moment)]
        return sessions

    @staticmethod
    def _status(sessions: list[Any], status: str | None) -> list[Any]:
        if status == "active":
            return [s for s in sessions if s.finished_at is None]
        if status == "finished":
            return [s for s in sessions if s.finished_at is not None]
        return sessions

    def op_listCompatSessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        sessions = [s for s in self.compat_sessions.values() if user_id is None or s.user_id == user_id]
        if params.get("filter[user-session]"):
            sessions = [s for s in sessions if s.user_session_id == params["filter[user-session]"]]
        sessions = self._activity_filters(self._status(sessions, params.get("filter[status]")), params)
        return 200, self._page(sessions, params, f"{PREFIX}/compat-sessions")

    def op_getCompatSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.compat_sessions, params["id"], "Compatibility session"))

    def _finish(self, table: dict[str, Any], session_id: str, what: str, path: str) -> tuple[int, Any]:
        session = table.get(session_id)
        if session is None:
            raise Answer(404, f"{what} with ID {session_id} not found")
        if session.finished_at is not None:
            raise Answer(400, f"{what} with ID {session_id} is already finished")
        session.finished_at = self.now()
        if getattr(session, "user_id", None) and table is not self.browser_sessions:
            self.homeserver_calls.append(("sync_devices", self.users[session.user_id].username, {}))
        return 200, self._single(session, path)

    def op_finishCompatSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return self._finish(self.compat_sessions, params["id"], "Compatibility session", path)

    def op_listOAuth2Sessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        sessions = [s for s in self.oauth2_sessions.values() if user_id is None or s.user_id == user_id]
        clients = params.get("filter[client]") or []
        for client_id in clients:
            if client_id not in self.clients:
                raise Answer(404, f"Client ID {client_id} not found")
        if clients:
            sessions = [s for s in sessions if s.client_id in clients]
        if params.get("filter[client-kind]"):
            static = params["filter[client-kind]"] == "static"
            sessions = [s for s in sessions if self.clients[s.client_id].is_static == static]
        if params.get("filter[user-session]"):
            sessions = [s for s in sessions if s.user_session_id == params["filter[user-session]"]]
        for scope in params.get("filter[scope]") or []:
            sessions = [s for s in sessions if scope in s.scope.split()]
        sessions = self._activity_filters(self._status(sessions, params.get("filter[status]")), params)
        return 200, self._page(sessions, params, f"{PREFIX}/oauth2-sessions")

    def op_getOAuth2Session(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.oauth2_sessions, params["id"], "OAuth 2.0 session"))

    def op_finishOAuth2Session(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return self._finish(self.oauth2_sessions, params["id"], "OAuth 2.0 session", path)

    def op_listUserSessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        sessions = [s for s in self.browser_sessions.values() if user_id is None or s.user_id == user_id]
        sessions = self._activity_filters(self._status(sessions, params.get("filter[status]")), params)
        return 200, self._page(sessions, params, f"{PREFIX}/user-sessions")

    def op_getUserSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.browser_sessions, params["id"], "User session"))

    def op_finishUserSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return self._finish(self.browser_sessions, params["id"], "User session", path)

    def op_listPersonalSessions(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        sessions = list(self.personal_sessions.values())
        for key, attribute in (("filter[owner_user]", "owner_user_id"), ("filter[actor_user]", "actor_user_id")):
            if params.get(key):
                self._known_user(params, key)
                sessions = [s for s in sessions if getattr(s, attribute) == params[key]]
        if params.get("filter[owner_client]"):
            sessions = [s for s in sessions if s.owner_client_id == params["filter[owner_client]"]]
        for scope in params.get("filter[scope]") or []:
            sessions = [s for s in sessions if scope in s.scope.split()]
        if params.get("filter[status]") == "active":
            sessions = [s for s in sessions if s.revoked_at is None]
        elif params.get("filter[status]") == "revoked":
            sessions = [s for s in sessions if s.revoked_at is not None]
        if params.get("filter[expires]") is not None:
            sessions = [s for s in sessions if (s.expires_at is not None) == params["filter[expires]"]]
        if params.get("filter[expires_before]"):
            moment = parse_rfc3339(params["filter[expires_before]"])
            sessions = [s for s in sessions if s.expires_at is not None and s.expires_at < moment]
        if params.get("filter[expires_after]"):
            moment = parse_rfc3339(params["filter[expires_after]"])
            sessions = [s for s in sessions if s.expires_at is not None and s.expires_at > moment]
        return 200, self._page(sessions, params, f"{PREFIX}/personal-sessions")

    def op_getPersonalSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.personal_sessions, params["id"], "Personal session"))

    def op_revokePersonalSession(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        session = self.personal_sessions.get(params["id"])
        if session is None:
            raise Answer(404, f"Personal session with ID {params['id']} not found")
        if session.revoked_at is not None:
            raise Answer(409, f"Personal session with ID {params['id']} is already revoked")
        session.revoked_at = self.now()
        for token in self.tokens.values():
            if token.session_id == session.id:
                token.revoked = True
        return 200, self._single(session)

    # -- e-mail addresses

    def op_listUserEmails(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        emails = [e for e in self.emails.values() if user_id is None or e.user_id == user_id]
        if params.get("filter[email]") is not None:
            emails = [e for e in emails if e.email == params["filter[email]"]]
        return 200, self._page(emails, params, f"{PREFIX}/user-emails")

    def op_getUserEmail(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.emails, params["id"], "User email"))

    def op_addUserEmail(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self.users.get(body["user_id"])
        if user is None:
            raise Answer(404, f"User ID {body['user_id']} not found")
        if any(e.email == body["email"] for e in self.emails.values()):
            raise Answer(409, f"User email {json.dumps(body['email'])} already in use")
        email = self.add_email(user, body["email"])
        self.homeserver_calls.append(("provision_user", user.username, {"emails": True}))
        return 201, self._single(email)

    def op_deleteUserEmail(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        email = self._get(self.emails, params["id"], "User email")
        del self.emails[email.id]
        return 204, None

    # -- upstream providers and links

    def op_listUpstreamOAuthProviders(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        providers = list(self.providers.values())
        if params.get("filter[enabled]") is not None:
            providers = [p for p in providers if (p.disabled_at is None) == params["filter[enabled]"]]
        return 200, self._page(providers, params, f"{PREFIX}/upstream-oauth-providers")

    def op_getUpstreamOAuthProvider(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.providers, params["id"], "Upstream OAuth 2.0 Provider"))

    def op_listUpstreamOAuthLinks(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user_id = self._known_user(params)
        links = [link for link in self.links.values() if user_id is None or link.user_id == user_id]
        if params.get("filter[provider]"):
            if params["filter[provider]"] not in self.providers:
                raise Answer(404, f"Provider ID {params['filter[provider]']} not found")
            links = [link for link in links if link.provider_id == params["filter[provider]"]]
        if params.get("filter[subject]") is not None:
            links = [link for link in links if link.subject == params["filter[subject]"]]
        if params.get("filter[human-account-name]"):
            needle = params["filter[human-account-name]"].lower()
            links = [link for link in links if needle in (link.human_account_name or "").lower()]
        return 200, self._page(links, params, f"{PREFIX}/upstream-oauth-links")

    def op_getUpstreamOAuthLink(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.links, params["id"], "Upstream OAuth 2.0 Link"))

    def op_addUpstreamOAuthLink(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        user = self.users.get(body["user_id"])
        if user is None:
            raise Answer(404, f"User ID {body['user_id']} not found")
        provider = self.providers.get(body["provider_id"])
        if provider is None:
            raise Answer(404, f"Upstream OAuth 2.0 Provider ID {body['provider_id']} not found")
        existing = next((link for link in self.links.values()
                         if link.provider_id == provider.id and link.subject == body["subject"]), None)
        if existing is not None:
            if existing.user_id is not None:
                raise Answer(409, f"Upstream Oauth 2.0 Provider ID {provider.id} with subject {body['subject']} is already linked to a user")
            existing.user_id = user.id
            return 200, self._single(existing)
        link = self.add_link(user, provider, body["subject"], human_account_name=body.get("human_account_name"))
        return 201, self._single(link)

    def op_deleteUpstreamOAuthLink(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        link = self._get(self.links, params["id"], "Upstream OAuth 2.0 Link")
        del self.links[link.id]
        return 204, None

    # -- registration tokens

    def op_listUserRegistrationTokens(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        now = self.now()
        tokens = list(self.registration_tokens.values())
        for key, test in (
            ("filter[used]", lambda t: t.times_used > 0),
            ("filter[revoked]", lambda t: t.revoked_at is not None),
            ("filter[expired]", lambda t: t.expires_at is not None and t.expires_at <= now),
            ("filter[valid]", lambda t: t.valid(now)),
        ):
            if params.get(key) is not None:
                tokens = [t for t in tokens if test(t) == params[key]]
        return 200, self._page(tokens, params, f"{PREFIX}/user-registration-tokens")

    def op_getUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.registration_tokens, params["id"], "Registration token"))

    def op_addUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        token = body.get("token") or random_token()
        if any(t.token == token for t in self.registration_tokens.values()):
            raise Answer(409, "A registration token with the same token already exists")
        entry = RegistrationToken(self.ids.new(), token, self.now(), usage_limit=body.get("usage_limit"),
                                  expires_at=parse_rfc3339(body["expires_at"]) if body.get("expires_at") else None)
        self.registration_tokens[entry.id] = entry
        return 201, self._single(entry)

    def op_updateUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        entry = self._get(self.registration_tokens, params["id"], "Registration token")
        # A key that is present changes the field, null clearing it; an absent key changes nothing.
        if "expires_at" in body:
            entry.expires_at = parse_rfc3339(body["expires_at"]) if body["expires_at"] else None
        if "usage_limit" in body:
            entry.usage_limit = body["usage_limit"]
        return 200, self._single(entry, path)

    def op_revokeUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        entry = self._get(self.registration_tokens, params["id"], "Registration token")
        if entry.revoked_at is not None:
            raise Answer(400, f"Registration token with ID {entry.id} is already revoked")
        entry.revoked_at = self.now()
        return 200, self._single(entry, path)

    def op_unrevokeUserRegistrationToken(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        entry = self._get(self.registration_tokens, params["id"], "Registration token")
        if entry.revoked_at is None:
            raise Answer(400, f"Registration token with ID {entry.id} is not revoked")
        entry.revoked_at = None
        return 200, self._single(entry, path)

    # -- OAuth 2.0 clients (read only)

    def op_listOAuth2Clients(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        clients = list(self.clients.values())
        if params.get("filter[client-kind]"):
            clients = [c for c in clients if c.is_static == (params["filter[client-kind]"] == "static")]
        if params.get("filter[client-name]"):
            clients = [c for c in clients if params["filter[client-name]"].lower() in (c.client_name or "").lower()]
        if params.get("filter[grant-type]"):
            clients = [c for c in clients if params["filter[grant-type]"] in c.grant_types]
        return 200, self._page(clients, params, f"{PREFIX}/oauth2-clients")

    def op_getOAuth2Client(self, params: dict[str, Any], body: Any, path: str) -> tuple[int, Any]:
        return 200, self._single(self._get(self.clients, params["id"], "OAuth 2.0 client"))


def _collection(kind: str) -> str:
    return {"user-registration_token": "user-registration-tokens"}.get(kind, kind + "s")


def _flatten(filters: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in filters.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return pairs
