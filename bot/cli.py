"""`synapse-admin-bot run | check | demo | login | reset-cross-signing | identity approve` — exit codes: 0 fine, 1 a check or
login failed, 2 bad config or bad arguments, 3 another process holds the state directory."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bot import wiring
from bot.homeserver.admin_api import AdminAPI
from bot.homeserver.admin_api.client import WhoAmI
from bot.homeserver.admin_api.errors import AdminAPIError, Forbidden, NotFound, UnrecognizedEndpoint
from bot.config import Config, ConfigError, load
from bot.handler_api.spec import CommandTable
from bot.logs import SecretScrubber
from bot.logs import configure as configure_logging
from bot.matrix.crypto.identity import State, inspect
from bot.matrix.crypto.keyfile import file_mode
from bot.matrix.crypto.keys_api import KeysAPIError
from bot.mas import check_mas

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_CONFIG = 2
EXIT_STATE_LOCKED = 3

Say = Callable[[bool, str], None]


def version() -> str:
    """The installed distribution's version; the source tree's when run from a clone without installing."""
    from importlib import metadata

    try:
        return metadata.version("synapse-admin-bot")
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        try:
            pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
            return str(pyproject["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "unknown"


class _ShowVersion(argparse.Action):
    """`--version`, looked up only when asked: reading the installed distributions' metadata is
    ~10 ms that every start would pay for building the parser (issue 23)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"synapse-admin-bot {version()}")
        parser.exit()


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--log-level and --log-format, accepted before the subcommand and after it. On a subcommand
    their default is SUPPRESS, so that a value given before the subcommand is not overwritten."""
    level = os.environ.get("SYNAPSE_ADMIN_BOT_LOG_LEVEL", "INFO") if defaults else argparse.SUPPRESS
    form = os.environ.get("SYNAPSE_ADMIN_BOT_LOG_FORMAT", "human") if defaults else argparse.SUPPRESS
    parser.add_argument("--log-level", default=level, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="INFO (default): one line when ready, per command, per refusal and on stop")
    parser.add_argument("--log-format", default=form, choices=["human", "json"],
                        help="human-readable lines (default) or JSON lines")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synapse-admin-bot", description="Run the Synapse Admin API from a Matrix room.")
    parser.add_argument("--version", action=_ShowVersion)
    _global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs: str) -> argparse.ArgumentParser:
        added = sub.add_parser(name, **kwargs)
        _global_options(added, defaults=False)
        return added

    run = command("run", help="run the bot until SIGTERM/SIGINT; SIGHUP reloads access, admin rooms and reports")
    run.add_argument("--config", required=True)
    check = command("check", help="validate the config and probe the homeserver")
    check.add_argument("--config", required=True)
    command("demo", help="a throwaway local Synapse with the bot; commands from standard input")
    reset = command(
        "reset-cross-signing",
        help="give the bot's account a new cross-signing identity held by the bot (when the account has keys "
             "the bot does not hold); clients will show that the bot's identity changed",
    )
    reset.add_argument("--config", required=True)
    identity = command("identity", help="pinned cross-signing identities of role holders")
    identity_sub = identity.add_subparsers(dest="identity_command", required=True)
    approve = identity_sub.add_parser(
        "approve", help="accept a role holder's changed cross-signing identity (where no other admin can: "
                        "check with the person first)")
    _global_options(approve, defaults=False)
    approve.add_argument("user", help="the user ID, e.g. @alice:example.com")
    approve.add_argument("--config", required=True)
    login = command("login", help="get an access token (password, or the OAuth device grant on MAS) into a file")
    login.add_argument("--homeserver", required=True, help="client-server API URL, e.g. https://matrix.example.com")
    login.add_argument("--user", required=True, help="the bot's user ID, e.g. @adminbot:example.com")
    login.add_argument("--token-file", default="./data/access_token", help="where to write the token (mode 0600)")
    login.add_argument("--password-file", help="read the password from this file instead of prompting")
    login.add_argument("--device-name", default="synapse-admin-bot")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scrubber = SecretScrubber()
    configure_logging(args.log_level, args.log_format, scrubber)
    if args.command == "demo":
        from bot.demo.run import main_demo

        return main_demo()
    if args.command == "login":
        return asyncio.run(_login(args))
    try:
        config = load(args.config, os.environ)
        from commands import load_table

        table = load_table()
        wiring.check_commands(config, table)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for source in (config.bot.token, config.admin_token):
        scrubber.add(wiring.current_token(source))
    scrubber.add(config.bot.password.reveal() if config.bot.password else None)
    for secret in config.mas.secrets() if config.mas else []:
        scrubber.add(secret)
    if args.command == "check":
        return asyncio.run(check(config, scrubber=scrubber))
    if args.command == "reset-cross-signing":
        return asyncio.run(reset_cross_signing(config))
    if args.command == "identity":
        return asyncio.run(approve_identity(config, args.user))
    return asyncio.run(_run(config, table, scrubber, Path(args.config)))


async def _login(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.homeserver.login import DeviceCodePrompt, LoginError, login

    def password() -> str:
        if args.password_file:
            return Path(args.password_file).read_text().strip()
        if not sys.stdin.isatty():  # piped in: read it as it comes, without getpass's echo warning
            return sys.stdin.readline().rstrip("\n")
        return getpass.getpass(f"Password for {args.user}: ")

    def prompt(code: DeviceCodePrompt) -> None:
        print(f"This homeserver delegates login to its authorization service. Open\n  {code.verification_uri}\n"
              f"and enter the code {code.user_code} (valid {code.expires_in // 60} min), logged in as {args.user}."
              + (f"\nOr open directly: {code.verification_uri_complete}" if code.verification_uri_complete else ""),
              flush=True)

    token_file = Path(args.token_file).expanduser().resolve()
    try:
        result = await login(args.homeserver, args.user, token_file, password=password, prompt=prompt,
                             device_name=args.device_name)
    except (LoginError, OSError) as exc:
        print(f"login failed: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"Logged in as {result.user_id}; token written to {result.token_file} (mode 0600).")
    if result.oauth:
        print("It is an OAuth token that the bot refreshes by itself (the file holds the refresh token).")
    print("Config lines:\nbot:\n"
          f"  user_id: \"{result.user_id}\"\n  access_token_file: {result.token_file}\n"
          + (f"  device_id: {result.device_id}\n" if result.device_id else ""))
    return EXIT_OK


async def _run(config: Config, table: CommandTable, scrubber: SecretScrubber, path: Path) -> int:
    from bot.state.lock import StateLock, StateLocked

    # One process per state directory: a second one (an overlapping restart, a slip) stops here,
    # before it reads or writes anything there.
    lock = StateLock(config.storage.directory)
    try:
        lock.acquire()
    except StateLocked as exc:
        print(f"not starting: {exc}", file=sys.stderr, flush=True)
        return EXIT_STATE_LOCKED
    from bot.app import App, run_until_signalled
    from bot.matrix.client import MatrixError

    try:
        await run_until_signalled(App(config, table=table, scrubber=scrubber, config_path=path))
    except MatrixError as exc:
        logging.getLogger("bot").error("%s", exc)
        return EXIT_CHECK_FAILED
    finally:
        lock.release()
    return EXIT_OK


@dataclass
class CheckLine:
    """One line of `check`'s output: a probe that passed or failed, or a note worth knowing."""

    ok: bool
    text: str
    note: bool = False  # worth knowing, not a failure

    def __str__(self) -> str:
        label = "note" if self.note else ("ok  " if self.ok else "FAIL")
        return f"{label}  {self.text}"


async def check(config: Config, *, out: object = None, scrubber: SecretScrubber | None = None) -> int:
    """One line per probe; never prints a token."""
    lines: list[CheckLine] = []

    def emit(line: CheckLine) -> None:
        lines.append(line)
        print(line, file=out or sys.stdout, flush=True)

    def say(ok: bool, text: str) -> None:
        emit(CheckLine(ok, text))

    def note(text: str) -> None:
        emit(CheckLine(True, text, note=True))

    bot_token = wiring.current_token(config.bot.token)
    client = wiring.client_api(config, lambda: bot_token or "")
    try:
        try:
            versions = await client.client_versions()
            say(True, f"homeserver reachable at {config.homeserver.url} (Matrix {versions[-1] if versions else '?'})")
        except AdminAPIError as exc:
            say(False, f"homeserver not reachable at {config.homeserver.url}: {exc.error}")
            return EXIT_CHECK_FAILED
        bot_who = await _check_bot_token(client, config, bot_token, say)
        await _check_admin(config, bot_token, say)
        if bot_who is not None:
            await _check_rooms(client, config, say)
        await _check_refused_rooms(config, say)
        await _check_cross_signing(config, bot_token if bot_who is not None else None, say)
        await _check_identities(config, say, note)
        await check_mas(config.homeserver.url, config.mas, say, note, on_secret=scrubber.add if scrubber else None)
        if config.metrics.bind is not None:
            host, port = config.metrics.bind
            note(f"metrics listener on: http://{host}:{port}/metrics serves Prometheus metrics (metrics.bind)")
    finally:
        await client.aclose()
    return EXIT_OK if all(line.ok for line in lines) else EXIT_CHECK_FAILED


async def _check_bot_token(client: AdminAPI, config: Config, token: str | None, say: Say) -> WhoAmI | None:
    if token is None:
        say(True, "bot token: none configured; the bot logs in with its password at start")
        return None
    try:
        who = await client.whoami()
    except AdminAPIError as exc:
        say(False, f"bot token is not valid: {exc.errcode}: {exc.error}")
        return None
    if who.user_id != config.bot.user_id:
        say(False, f"bot token belongs to {who.user_id}, not to bot.user_id {config.bot.user_id}")
        return None
    say(True, f"bot token valid for {who.user_id} (device {who.device_id or '?'}; from {token_origin(config.bot.token)})")
    if config.bot.device_id is not None and who.device_id is not None and config.bot.device_id != who.device_id:
        # The E2EE store is kept per device: a wrong one means keys the homeserver does not know.
        say(False, f"bot.device_id is {config.bot.device_id}, but the token belongs to device {who.device_id}: "
                   "remove bot.device_id (it is looked up) or set it to the token's device")
    return who


def token_origin(source: object) -> str:
    """Where a token comes from, for the operator: the key, the file or the environment variable — never the token."""
    from bot.config import TokenSource

    if not isinstance(source, TokenSource):
        return "none"
    if source.file is not None:
        return f"{source.key}: {source.file}"
    if source.key.startswith("SYNAPSE_ADMIN_BOT_"):
        return f"${source.key} from the environment"
    return source.key


async def _check_admin(config: Config, bot_token: str | None, say: Say) -> None:
    if wiring.current_token(config.admin_token) is None and bot_token is None:
        say(True, "admin token: the bot's password session is used; checked when the bot runs")
        return
    if config.admin_token is not None:
        used = f"a token of its own, from {token_origin(config.admin_token)}"
    else:
        used = f"the bot's own token, from {token_origin(config.bot.token)}"
    say(True, f"Admin API token: {used}")
    api = wiring.admin_api(config, session_token=lambda: bot_token or "", timeout=wiring.CHECK_TIMEOUT_S)
    try:
        who = await api.whoami()
        try:
            details = await api.user_details(who.user_id)
        except Forbidden:
            say(False, f"{who.user_id} is not a server admin: the Admin API refuses its token "
                       "(make it one with `register_new_matrix_user -a` or PUT /_synapse/admin/v2/users/<user_id> {\"admin\": true})")
            return
        if details.admin:
            version = await api.server_version()
            say(True, f"{who.user_id} is a server admin; Admin API at {config.homeserver.admin_api_url} answers (Synapse {version})")
            await _check_rate_limit(api, config, say)
        else:
            say(False, f"{who.user_id} is not a server admin")
    except AdminAPIError as exc:
        say(False, f"Admin API at {config.homeserver.admin_api_url} failed: {exc.errcode}: {exc.error}")
    finally:
        await api.aclose()


async def _check_rate_limit(api: AdminAPI, config: Config, say: Say) -> None:
    """Whether the bot's own message rate limit is lifted (the bot does it at start: `rate_limits.exempt_bot`)."""
    user_id = config.bot.user_id
    try:
        current = await api.ratelimit(user_id)
    except AdminAPIError as exc:
        say(False, f"cannot read the message rate limit of {user_id}: {exc.errcode}: {exc.error}")
        return
    lifted = current is not None and current.messages_per_second == 0 and current.burst_count == 0
    if not config.rate_limits.exempt_bot:
        state = "lifted by hand (override 0/0)" if lifted else (
            f"override {current.messages_per_second:g}/s, burst {current.burst_count:g}" if current else "the homeserver's default")
        say(True, f"bot's message rate limit: {state}; rate_limits.exempt_bot is false, so the bot leaves it as it is")
    elif lifted:
        say(True, "bot's message rate limit is lifted (override_ratelimit 0/0; rate_limits.exempt_bot)")
    else:
        say(True, "bot's message rate limit is not lifted yet: the bot lifts it when it starts (rate_limits.exempt_bot)")


async def _check_rooms(client: AdminAPI, config: Config, say: Say) -> None:
    try:
        joined = set(await client.my_joined_rooms())
        invited = set(await client.my_invited_rooms())
    except AdminAPIError as exc:
        say(False, f"cannot list the bot's rooms: {exc.errcode}: {exc.error}")
        return
    pins = await _stored_pins(config)
    for room in config.admin_rooms:
        room_id = room
        if room.startswith("#"):
            try:
                room_id = await client.resolve_alias(room)
            except AdminAPIError as exc:
                say(False, f"admin room {room}: alias does not resolve ({exc.errcode})"
                    + (f"; the bot keeps using {pins[room]}, where it pointed first" if room in pins else ""))
                continue
            pinned = pins.get(room)
            if pinned is not None and pinned != room_id:
                # The bot never follows a moved alias (someone may have taken it over): say so.
                say(False, f"admin room alias {room} now points to {room_id}, not to {pinned} where it pointed "
                           f"first: {room_id} is not an admin room (if the move is intended, list {room_id} "
                           "under admin_rooms)")
                room_id = pinned
        named = room + (f" ({room_id})" if room_id != room else "")
        if room_id in joined:
            say(True, f"bot is in admin room {named}")
        elif room_id in invited:
            # `check` before the first `run`: the bot joins the rooms it is invited to when it starts.
            say(True, f"bot is invited to admin room {named}; it joins when it starts")
        else:
            say(False, f"bot is neither in nor invited to admin room {named}: invite it; it joins admin rooms by itself")


async def _stored_meta(config: Config, key: str) -> str | None:
    """A record the running bot keeps in its state database (None before its first run)."""
    if not config.storage.path.exists():
        return None
    from bot.state.db import Database
    from bot.state.meta import MetaStore

    db = Database(config.storage.path)
    await db.open()
    try:
        return await MetaStore(db).get_meta(key)
    finally:
        await db.close()


async def _check_refused_rooms(config: Config, say: Say) -> None:
    """The admin rooms that refused the running bot's report notices (kicked, banned), as it recorded them."""
    import json

    from bot.inbox.inbox import ROOMS_REFUSED_KEY

    try:
        refused = json.loads(await _stored_meta(config, ROOMS_REFUSED_KEY) or "{}")
    except ValueError:
        return
    for room_id, state in (refused.items() if isinstance(refused, dict) else []):
        state = state if isinstance(state, dict) else {}
        since = _utc(state.get("since"))
        again = _utc(state.get("retry_at"))
        say(False, f"admin room {room_id} refuses the bot's report notices since {since} ({state.get('error', '?')}); "
                   f"the bot tries it again with backoff (next at {again}): invite the bot back, or remove the room "
                   "from admin_rooms")


def _utc(value: object) -> str:
    if not isinstance(value, (int, float)):
        return "?"
    return datetime.fromtimestamp(float(value), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


async def _stored_pins(config: Config) -> dict[str, str]:
    """The admin room aliases as the running bot pinned them at their first resolution."""
    import json

    from bot.matrix.client import PINS_KEY

    stored = await _stored_meta(config, PINS_KEY)
    try:
        pins = json.loads(stored) if stored else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in pins.items()} if isinstance(pins, dict) else {}


async def _bot_session(config: Config, token: str | None) -> tuple[str, str | None] | None:
    """The bot's client token and device: the configured token, else the session its password login stored."""
    if token is None:
        if not config.storage.path.exists():
            return None
        from bot.matrix.client import SESSION_KEY

        db, stores = await wiring.open_store(config)
        try:
            stored = await stores.meta.get_meta(SESSION_KEY)
        finally:
            await db.close()
        user_id, device_id, token = ((stored or "").split(" ", 2) + ["", "", ""])[:3]
        if user_id != config.bot.user_id or not token:
            return None
    api = wiring.client_api(config, lambda: token or "")
    try:
        who = await api.whoami()
    except AdminAPIError:
        return None
    finally:
        await api.aclose()
    if who.user_id != config.bot.user_id:
        return None
    return token, who.device_id


async def _check_identities(config: Config, say: Say, note: Callable[[str], None]) -> None:
    """Who is obeyed in encrypted admin rooms, and the changed identities waiting for approval."""
    enc = config.encryption
    if not enc.enabled:
        return
    if not enc.require_cross_signed_senders:
        note("encrypted admin rooms: every device of a role holder is obeyed and gets room keys "
             "(encryption.require_cross_signed_senders: false)")
        return
    pinned = "" if enc.pin_identities else "; identities not pinned (encryption.pin_identities: false)"
    pins = []
    if enc.pin_identities and config.storage.path.exists():
        db, stores = await wiring.open_store(config)
        try:
            pins = await stores.identities.all()
        finally:
            await db.close()
    say(True, f"encrypted admin rooms: only devices their owners cross-signed are obeyed and get room keys{pinned}"
              + (f"; {len(pins)} identities pinned" if enc.pin_identities else ""))
    for pin in pins:
        if pin.changed_key:
            say(False, f"the cross-signing identity of {pin.user_id} changed; their commands are refused until an "
                       f"admin other than them runs `identity approve {pin.user_id}` (or `synapse-admin-bot identity "
                       "approve` here)")


async def _check_cross_signing(config: Config, token: str | None, say: Say) -> None:
    """Encrypted admin rooms: is the bot's device cross-signed, and by keys the bot holds?"""
    if not config.encryption.enabled:
        say(True, "encryption: off (encryption.enabled: false); the bot cannot read encrypted admin rooms")
        return
    path = wiring.cross_signing_keys_path(config)
    mode = file_mode(path)
    if mode is None:
        say(True, f"cross-signing keys file: not created yet (the bot creates {path} at its first start)")
    elif mode & 0o077:
        say(False, f"cross-signing keys file {path} is readable by others (mode {mode:o}): `chmod 600` it")
    else:
        say(True, f"cross-signing keys file: {path} (mode {mode:o})")
    session = await _bot_session(config, token)
    if session is None:
        say(True, "cross-signing: not checked (no usable session yet: the bot logs in with its password at start)")
        return
    api = wiring.keys_api(config, lambda: session[0], timeout=wiring.CHECK_TIMEOUT_S)
    try:
        status = await inspect(api, user_id=config.bot.user_id, device_id=session[1], path=path)
    except KeysAPIError as exc:
        say(False, f"cross-signing: cannot read the bot's keys from the homeserver: {exc}")
        return
    finally:
        await api.aclose()
    say(status.state in (State.READY, State.ABSENT), f"cross-signing: {status.detail}")


async def approve_identity(config: Config, user_id: str, *, out: object = None) -> int:
    """`identity approve <user>` on the console: the operator pins the changed identity the bot saw
    (the running bot reads the pins from the database at every command, so it takes effect at once)."""
    import time

    from bot.handler_api.spec import CommandError
    from bot.runtime.identities import CONSOLE, approve

    if not config.storage.path.exists():
        print(f"no bot state at {config.storage.path}: the bot has pinned nothing yet", file=out or sys.stderr)
        return EXIT_CHECK_FAILED
    db, stores = await wiring.open_store(config)
    try:
        said = await approve(stores.identities, user_id, by=CONSOLE, now_ms=int(time.time() * 1000))
    except CommandError as exc:
        print(f"not approved: {exc}", file=out or sys.stderr, flush=True)
        return EXIT_CHECK_FAILED
    finally:
        await db.close()
    print(said, file=out or sys.stdout, flush=True)
    return EXIT_OK


async def reset_cross_signing(config: Config, *, out: object = None) -> int:
    """The operator's explicit action when the account has cross-signing keys the bot does not hold."""

    def say(text: str) -> None:
        print(text, file=out or sys.stdout, flush=True)

    if not config.encryption.enabled:
        say("encryption is off in the config (encryption.enabled: false): the bot has no cross-signing identity")
        return EXIT_CHECK_FAILED
    session = await _bot_session(config, wiring.current_token(config.bot.token))
    if session is None:
        say("no usable session for the bot: configure bot.access_token, or start the bot once so that it logs in "
            "with its password")
        return EXIT_CHECK_FAILED
    token, device_id = session
    if device_id is None:
        say("the homeserver did not say which device the bot's token belongs to; cannot sign it")
        return EXIT_CHECK_FAILED
    admin = wiring.admin_api(config, session_token=lambda: token, timeout=wiring.CHECK_TIMEOUT_S)
    keys_api = wiring.keys_api(config, lambda: token)

    async def allow_without_uia() -> None:
        say(f"{config.bot.user_id} has cross-signing keys the bot does not hold; replacing them "
            "(clients will show that the bot's identity changed; whoever verified the bot verifies it again)")
        try:
            until = await admin.allow_cross_signing_replacement(config.bot.user_id)
            when = datetime.fromtimestamp(until / 1000, tz=timezone.utc).strftime("%H:%M:%S UTC")
            say(f"the Admin API allows replacing the master key without interactive auth until {when} (Synapse "
                "honours this when it delegates auth to MAS; otherwise it asks for the bot's password)")
        except (NotFound, UnrecognizedEndpoint, Forbidden) as exc:
            say(f"could not open the replacement window through the Admin API ({exc.errcode}: {exc.error}); "
                "trying with the bot's password")
        except AdminAPIError as exc:
            say(f"the Admin API failed ({exc.errcode}: {exc.error}); trying with the bot's password")

    signing = wiring.cross_signing(config, keys_api, device_id=device_id)
    try:
        status = await signing.replace(allow_without_uia)
    finally:
        await keys_api.aclose()
        await admin.aclose()
    say(("done: " if status.ready else "FAILED: ") + status.detail)
    return EXIT_OK if status.ready else EXIT_CHECK_FAILED
