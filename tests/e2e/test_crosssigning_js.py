"""The faithful test: a moderator whose client runs matrix-js-sdk with its Rust crypto in
"exclude insecure devices" mode (OnlySignedDevicesIsolationMode, as Element). In that mode room
keys go only to devices their owner cross-signed, and messages from other devices are not
decrypted at all: a decrypted reply without a shield is the proof that the bot's device is
cross-signed, and the moderator's command reaching the bot proves its keys were shared with it.

The Node client lives in tests/js (`npm ci` there; .ci/run does it). Without Node or its
packages this test is skipped with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from nio import MegolmEvent

from bot.matrix.crypto.keys_api import KeysAPI
from bot.demo.run import MODERATOR_PASSWORD, build_world, running_bot
from bot.demo.synapse import Account, LocalHomeserver
from tests.support.e2ee import EncryptedPerson

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NPM_CI_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` binary, with tests/js's packages installed (`npm ci` here if .ci/run has not)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed, so the matrix-js-sdk test client cannot run "
                    "(install Node 20 or later, then `npm ci` in tests/js)")
    if not (JS_DIR / "node_modules" / "matrix-js-sdk" / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so tests/js's packages cannot be installed (`npm ci` in tests/js)")
        try:
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                                    capture_output=True, text=True, timeout=NPM_CI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.skip(f"`npm ci` in tests/js took more than {NPM_CI_TIMEOUT_S} s; the matrix-js-sdk client cannot run")
        if result.returncode != 0:
            pytest.skip(f"`npm ci` in tests/js failed, so the matrix-js-sdk client cannot run: {result.stderr[-600:]}")
    return node


class JsModerator:
    """tests/js/moderator.mjs as a subprocess: JSON lines in, JSON lines out."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.ready: dict[str, Any] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, node: str, hs_url: str, account: Account, room_id: str, log_path: Path) -> JsModerator:
        process = await asyncio.create_subprocess_exec(
            node, str(JS_DIR / "moderator.mjs"), "--homeserver", hs_url, "--user", account.user_id,
            "--password", account.password, "--room", room_id,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_path.open("w"), cwd=JS_DIR,
        )
        moderator = cls(process, log_path)
        moderator.ready = await moderator.expect(lambda line: line["type"] == "ready", timeout=90)
        return moderator

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            with contextlib.suppress(ValueError):
                await self.lines.put(json.loads(line))

    async def expect(self, predicate: Any, timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            try:
                line = await asyncio.wait_for(self.lines.get(), timeout=max(0.0, remaining))
            except asyncio.TimeoutError:
                raise AssertionError(self._diagnosis("timed out")) from None
            self.seen.append(line)
            if line["type"] in ("fatal", "send_failed"):
                raise AssertionError(self._diagnosis(str(line)))
            if predicate(line):
                return line

    async def ask(self, text: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"send": text}).encode() + b"\n")
        await self.process.stdin.drain()
        sent = await self.expect(lambda line: line["type"] == "sent" and line["body"] == text, timeout)
        return await self.expect(lambda line: line["type"] == "reply" and line["in_reply_to"] == sent["event_id"], timeout)

    def _diagnosis(self, what: str) -> str:
        log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        return f"js moderator: {what}; its lines: {self.seen}; the end of its log:\n{log}"

    async def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=10)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


def assert_trusted_answer(reply: dict[str, Any], bot_device: str) -> None:
    assert reply["encrypted"], reply
    assert "Homeserver" in reply["body"] and "version" in reply["body"], reply
    assert reply["shield"] == "NONE" and reply["shield_reason"] is None, reply
    assert reply["sender_device"] == bot_device and reply["sender_device_signed_by_owner"] is True, reply


async def log_in_another_device(hs: LocalHomeserver, account: Account) -> Account:
    async with httpx.AsyncClient(base_url=hs.url, timeout=30) as http:
        response = await http.post("/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": account.user_id},
            "password": account.password, "initial_device_display_name": "legacy client (tests)",
        })
        response.raise_for_status()
        data = response.json()
    return Account(account.user_id, account.password, data["access_token"], data["device_id"])


async def room_blocked(hs: LocalHomeserver, admin: Account, room_id: str) -> bool:
    async with httpx.AsyncClient(base_url=hs.url, timeout=30, headers={"Authorization": f"Bearer {admin.access_token}"}) as http:
        response = await http.get(f"/_synapse/admin/v1/rooms/{quote(room_id, safe='')}/block")
        response.raise_for_status()
        return bool(response.json()["block"])


async def bot_master_key(hs: LocalHomeserver, account: Account) -> str | None:
    api = KeysAPI(hs.url, lambda: account.access_token)
    try:
        return (await api.query([account.user_id]))[account.user_id].master_public
    finally:
        await api.aclose()


@pytest.mark.slow
async def test_a_moderator_excluding_insecure_devices_gets_trusted_answers_and_unsigned_devices_are_refused(
    homeserver: LocalHomeserver, tmp_root: Path, node: str
) -> None:
    world = await build_world(homeserver, tmp_root / "jsbot", bot_localpart="jsbot", moderator_localpart="js-admin",
                              encrypted=True)
    assert world.moderator.password == MODERATOR_PASSWORD
    world.roles = {"admins": [world.moderator.user_id]}
    config = world.config()  # the defaults: only cross-signed devices are obeyed
    await world.chat.start()
    moderator: JsModerator | None = None
    legacy: EncryptedPerson | None = None
    try:
        async with running_bot(config) as app:
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
            bot_device = app.matrix.device_id
            moderator = await JsModerator.start(node, homeserver.url, world.moderator, world.admin_room,
                                                tmp_root / "js-moderator.log")
            assert moderator.ready["cross_signing_ready"] and moderator.ready["device_signed_by_owner"], moderator.ready

            # Their command reached the bot (keys shared with its device) and its answer is decrypted and trusted.
            assert_trusted_answer(await moderator.ask("!admin server version"), bot_device)

            # The same moderator on a device they have not cross-signed (a nio client): refused. The room key
            # of the refusal (of every send) goes to cross-signed devices only, so not to that device: the
            # refusal's words are in tests/e2e/test_identity_pins.py; here the audit log names the reason.
            other = await log_in_another_device(homeserver, world.moderator)
            legacy = EncryptedPerson(homeserver.url, other, tmp_root / "js-admin-legacy-store")
            await legacy.start()
            await asyncio.sleep(0.5)  # let it see the bot's device
            command = await legacy.send_text(world.admin_room, "!admin server version")
            withheld = await legacy.wait_for_reply(world.admin_room, command)
            assert isinstance(withheld, MegolmEvent), withheld
            [row] = await app.stores.audit.audit_entries(limit=1)
            assert row.result == "refused" and row.detail == "device not cross-signed" and row.origin == command, row

            # A command in the clear (any holder of a token can post one) is refused too.
            plain = await world.chat.send_text(world.admin_room, "!admin server version")
            assert isinstance(await legacy.wait_for_reply(world.admin_room, plain), MegolmEvent)
            [row] = await app.stores.audit.audit_entries(limit=1)
            assert row.result == "refused" and row.detail == "device not cross-signed" and row.origin == plain, row

            # Reactions act as well, but travel in the clear (Element does not encrypt them either), so
            # their device is unknown: a ✅ confirms nothing; the typed confirmation from a signed device does.
            target = f"!cs-block-{world.bot.localpart}:{homeserver.server_name}"
            prompt = await moderator.ask(f"!admin room block {target}")
            code = re.search(r"confirm ([A-Za-z0-9]{6})", prompt["body"])
            assert code is not None, prompt
            await world.chat.react(world.admin_room, prompt["event_id"], "✅")
            await legacy.wait_for_reply(world.admin_room, prompt["event_id"])  # the refusal (its words: unit tests)
            assert not await room_blocked(homeserver, world.bot, target)
            done = await moderator.ask(f"!admin confirm {code.group(1)}")
            assert "Blocked" in done["body"], done
            assert await room_blocked(homeserver, world.bot, target)
            master = await bot_master_key(homeserver, world.bot)

        # After a restart the bot has the same identity: the moderator's client, which pinned it,
        # still decrypts and trusts the answers (a new identity would be flagged as a reset).
        async with running_bot(config):
            assert_trusted_answer(await moderator.ask("!admin server version"), bot_device)
        assert master is not None and await bot_master_key(homeserver, world.bot) == master
    finally:
        if moderator is not None:
            await moderator.close()
        if legacy is not None:
            await legacy.close()
        await world.chat.close()
