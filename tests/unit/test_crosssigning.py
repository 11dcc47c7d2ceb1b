"""Cross-signing: the keys file (and its compatibility with files written before signing moved to
signedjson), the chain of signatures behind "this device is cross-signed", interactive auth."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import signedjson.key
import signedjson.sign

from unpaddedbase64 import decode_base64

from bot.matrix.crypto.identity import CrossSigning
from bot.matrix.crypto.keyfile import CrossSigningKeys, KeysFileError, load_keys, save_keys
from bot.matrix.crypto.keys_api import KeysAPI, UserKeys, parse_keys_query
from bot.matrix.crypto.signing import SigningKey, sign_json, verify_signed_json

USER = "@mod:example.org"


def nacl_keys(key: SigningKey) -> tuple[Any, Any]:
    """The same key as signedjson sees it (PyNaCl), from our seed."""
    signing = signedjson.key.decode_signing_key_base64("ed25519", key.public, key.seed_b64())
    return signing, signedjson.key.get_verify_key(signing)


def test_our_signatures_verify_with_signedjson_and_back() -> None:
    key = SigningKey.generate()
    signing, verify = nacl_keys(key)
    obj = {"user_id": USER, "usage": ["self_signing"], "keys": {key.key_id: key.public}, "unsigned": {"x": 1}}

    ours = sign_json(obj, USER, key)
    assert "unsigned" not in ours and "signatures" not in obj  # the input is not modified
    signedjson.sign.verify_signed_json(ours, USER, verify)  # raises when invalid

    theirs = signedjson.sign.sign_json(dict(obj), USER, signing)
    assert verify_signed_json(theirs, USER, key.public)
    assert theirs["signatures"][USER][key.key_id] == ours["signatures"][USER][key.key_id]  # Ed25519 is deterministic


def test_verification_fails_on_any_change() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    signed = sign_json({"user_id": USER, "n": 1}, USER, key)
    assert verify_signed_json(signed, USER, key.public)
    assert not verify_signed_json({**signed, "n": 2}, USER, key.public)
    assert not verify_signed_json(signed, "@else:example.org", key.public)
    assert not verify_signed_json(signed, USER, other.public)
    broken = json.loads(json.dumps(signed))
    broken["signatures"][USER][key.key_id] = "A" * 86
    assert not verify_signed_json(broken, USER, key.public)
    assert not verify_signed_json({"user_id": USER, "n": 1}, USER, key.public)


def test_upload_body_signs_the_sub_keys_with_the_master_key() -> None:
    keys = CrossSigningKeys.generate(USER)
    body = keys.upload_body()
    assert body["master_key"] == {"user_id": USER, "usage": ["master"], "keys": {keys.master.key_id: keys.master.public}}
    _, master_verify = nacl_keys(keys.master)
    for name, usage in (("self_signing_key", "self_signing"), ("user_signing_key", "user_signing")):
        assert body[name]["usage"] == [usage]
        signedjson.sign.verify_signed_json(body[name], USER, master_verify)
    published = UserKeys(USER, master=body["master_key"], self_signing=body["self_signing_key"])
    assert published.master_public == keys.master.public
    assert published.self_signing_public == keys.self_signing.public


def device_keys(user_id: str, device_id: str, device_key: SigningKey, curve: str = "C" * 43) -> dict[str, Any]:
    keys = {
        "user_id": user_id, "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{device_id}": curve, f"ed25519:{device_id}": device_key.public},
    }
    # A device signs its own keys under its device ID.
    signed = sign_json(keys, user_id, device_key)
    signature = signed["signatures"][user_id].pop(device_key.key_id)
    signed["signatures"][user_id][f"ed25519:{device_id}"] = signature
    signed["unsigned"] = {"device_display_name": "phone"}
    return signed


def published(keys: CrossSigningKeys, devices: dict[str, Any], user_id: str = USER) -> UserKeys:
    body = keys.upload_body()
    answer = {
        "device_keys": {user_id: devices},
        "master_keys": {user_id: body["master_key"]},
        "self_signing_keys": {user_id: body["self_signing_key"]},
    }
    return parse_keys_query(answer, [user_id])[user_id]


def test_a_device_signed_by_its_owner_is_cross_signed() -> None:
    owner = CrossSigningKeys.generate(USER)
    device_key = SigningKey.generate()
    unsigned_device = device_keys(USER, "PHONE", device_key, curve="P" * 43)
    signed_device = owner.sign_device(unsigned_device)
    user = published(owner, {"PHONE": signed_device, "LAPTOP": device_keys(USER, "LAPTOP", SigningKey.generate())})

    assert user.device_cross_signed("PHONE")
    assert user.device_cross_signed("PHONE", curve25519="P" * 43, ed25519=device_key.public)
    assert user.device_with_curve25519("P" * 43) == "PHONE"
    assert not user.device_cross_signed("PHONE", curve25519="Q" * 43)  # not the device that sent the message
    assert not user.device_cross_signed("PHONE", ed25519=SigningKey.generate().public)
    assert not user.device_cross_signed("LAPTOP")  # its owner never signed it
    assert not user.device_cross_signed("TABLET")  # unknown


def test_cross_signing_needs_the_whole_chain() -> None:
    owner = CrossSigningKeys.generate(USER)
    device_key = SigningKey.generate()
    signed_device = owner.sign_device(device_keys(USER, "PHONE", device_key))

    # A self-signing key that the master key did not sign proves nothing.
    forged = CrossSigningKeys(USER, SigningKey.generate(), owner.self_signing, owner.user_signing)
    body = owner.upload_body()
    user = UserKeys(USER, master=forged.upload_body()["master_key"], self_signing=body["self_signing_key"],
                    devices={"PHONE": signed_device})
    assert user.self_signing_public is None
    assert not user.device_cross_signed("PHONE")

    # Keys changed after signing (the homeserver swapping the identity key) break the signature.
    tampered = json.loads(json.dumps(signed_device))
    tampered["keys"]["curve25519:PHONE"] = "X" * 43
    assert not published(owner, {"PHONE": tampered}).device_cross_signed("PHONE")

    # The self-signing signature alone is not enough: the device must have signed its own keys.
    without_self = json.loads(json.dumps(signed_device))
    del without_self["signatures"][USER]["ed25519:PHONE"]
    assert not published(owner, {"PHONE": without_self}).device_cross_signed("PHONE")

    # Someone else's cross-signing keys do not vouch for this user's device.
    stranger = CrossSigningKeys.generate("@other:example.org")
    assert not published(stranger, {"PHONE": stranger.sign_device(device_keys(USER, "PHONE", device_key))}).device_cross_signed("PHONE")

    # No cross-signing at all.
    assert not UserKeys(USER, devices={"PHONE": signed_device}).device_cross_signed("PHONE")


# Written by the bot before signing moved to signedjson (hand-written canonical JSON and Ed25519 on
# pycryptodome): test keys, with the public keys and signatures that code derived from them.
KEYS_FILE_V1 = (
    '{"version": 1, "user_id": "@bot:example.org", '
    '"master": "B7RNpVtuaC1+U5G/IastvvanfVTGKdDhrrMYv9BNTC0", '
    '"self_signing": "zuGuBD0D08vIOUXpvvabiZgqwhwKSMhvqSaLu/OyvEs", '
    '"user_signing": "1dudKLxTxhXoZs1S8NfRnwdaZKgfyAff7cZdKiE5ejY"}'
)
V1_MASTER = "DlPi8S5wjhFBQTwDgw82m4gnBVKJaUm86/3rHTEOZ9Y"
V1_SELF_SIGNING = "Y1UQZtad8+Y/rUjTp5zGQjMx3N7MnSIz38rAo3+X2oE"
V1_USER_SIGNING = "QTwzoNoHAq1T7B/HmWsIpi4ADbHMl5ZsRr7pqLw2DqI"
V1_SSK_SIGNATURE = "7ywfYLErcS3dVAFvH4AvdcULW3f51cQKzf7JeCwDc6h05N1KO8RqOztYdLyYhQmTNW05kEXfXaj6TeUfAQUwDA"
V1_DEVICE_SIGNATURE = "rNq6mdWZKT+MTmpazuJ3XNx1DaxvfzkU2sM+MVe0/2qDF9yY8UHcGj0+CblNlwFBo/rj/Z0m8iyNsosblrwhDQ"


def test_a_keys_file_written_by_earlier_versions_keeps_the_bots_identity(tmp_path: Path) -> None:
    path = tmp_path / "crypto" / "cross_signing_keys.json"
    path.parent.mkdir()
    path.write_text(KEYS_FILE_V1)
    path.chmod(0o600)
    keys = load_keys(path, "@bot:example.org")
    assert keys is not None
    assert (keys.master.public, keys.self_signing.public, keys.user_signing.public) == (
        V1_MASTER, V1_SELF_SIGNING, V1_USER_SIGNING)
    # Ed25519 is deterministic: the same signatures as before, so nothing changes on the homeserver.
    body = keys.upload_body()
    assert body["self_signing_key"]["signatures"] == {"@bot:example.org": {f"ed25519:{V1_MASTER}": V1_SSK_SIGNATURE}}
    device = {"user_id": "@bot:example.org", "device_id": "BOTDEV", "keys": {"ed25519:BOTDEV": "x"}, "unsigned": {"a": 1}}
    assert keys.sign_device(device) == {
        "user_id": "@bot:example.org", "device_id": "BOTDEV", "keys": {"ed25519:BOTDEV": "x"},
        "signatures": {"@bot:example.org": {f"ed25519:{V1_SELF_SIGNING}": V1_DEVICE_SIGNATURE}},
    }
    # And the file is written back in the same format.
    save_keys(path, keys)
    assert json.loads(path.read_text()) == json.loads(KEYS_FILE_V1)


def nested(depth: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return outer


@pytest.mark.parametrize("mangle", [
    lambda o: o.update(signatures=["not", "a", "map"]),
    lambda o: o.update(signatures={USER: "not a map"}),
    lambda o: o["signatures"][USER].update({k: 12345 for k in o["signatures"][USER]}),
    lambda o: o["signatures"][USER].update({k: "é" * 86 for k in o["signatures"][USER]}),
    lambda o: o.update(score=float("nan")),
    lambda o: o.update(deep=nested(5000)),
])
def test_malformed_signed_objects_are_rejected_not_raised(mangle: Any) -> None:
    key = SigningKey.generate()
    signed = sign_json({"user_id": USER, "n": 1}, USER, key)
    mangle(signed)
    assert verify_signed_json(signed, USER, key.public) is False


def test_malformed_public_keys_are_rejected_not_raised() -> None:
    key = SigningKey.generate()
    signed = sign_json({"user_id": USER}, USER, key)
    for public in (None, 42, "", "short", "é" * 43, key.public + "AAAA"):
        assert verify_signed_json(signed, USER, public) is False
    assert verify_signed_json("not an object", USER, key.public) is False
    weird = UserKeys(USER, master={"user_id": USER, "usage": 5, "keys": {key.key_id: key.public}})
    assert weird.master_public is None and not weird.device_cross_signed("X")


def test_keys_file_is_owner_only_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "crypto" / "cross_signing_keys.json"
    keys = CrossSigningKeys.generate(USER)
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        save_keys(path, keys)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    loaded = load_keys(path, USER)
    assert loaded is not None and loaded.master.public == keys.master.public
    assert loaded.self_signing.seed_b64() == keys.self_signing.seed_b64()
    assert load_keys(tmp_path / "missing.json", USER) is None


def test_private_keys_never_show_in_reprs_or_errors(tmp_path: Path) -> None:
    keys = CrossSigningKeys.generate(USER)
    seeds = [keys.master.seed_b64(), keys.self_signing.seed_b64(), keys.user_signing.seed_b64()]
    for seed in seeds:
        assert seed not in repr(keys) and seed not in str(keys)
        assert len(decode_base64(seed)) == 32
    path = tmp_path / "keys.json"
    save_keys(path, keys)
    with pytest.raises(KeysFileError) as wrong_user:
        load_keys(path, "@someone:example.org")
    assert "@someone:example.org" in str(wrong_user.value)
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(KeysFileError) as unreadable:
        load_keys(path, USER)
    assert not any(seed in str(unreadable.value) for seed in seeds)


def test_a_keys_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    save_keys(path, CrossSigningKeys.generate(USER))
    path.chmod(0o644)
    assert load_keys(path, USER) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- interactive auth, as older Synapse versions (first upload) and MAS deployments ask for it.
# A real Synapse 1.163 without MAS asks only when replacing keys (tests/e2e/test_crosssigning.py).


class FakeHomeserver:
    """Just the three key endpoints; the device-signing upload wants UIA as configured."""

    def __init__(self, flows: list[list[str]], params: dict[str, Any] | None = None) -> None:
        self.flows = flows
        self.params = params or {}
        self.device_key = SigningKey.generate()
        self.device = device_keys(USER, "BOTDEVICE", self.device_key)
        self.signing_keys: dict[str, Any] = {}
        self.auth_seen: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/keys/query"):
            answer: dict[str, Any] = {"device_keys": {USER: {"BOTDEVICE": self.device}}}
            if self.signing_keys:
                answer["master_keys"] = {USER: self.signing_keys["master_key"]}
                answer["self_signing_keys"] = {USER: self.signing_keys["self_signing_key"]}
            return httpx.Response(200, json=answer)
        if request.url.path.endswith("/keys/device_signing/upload"):
            auth = body.pop("auth", None)
            if auth is None or auth.get("session") != "S1" or auth.get("password") != "bot-password":
                if auth is not None:
                    self.auth_seen.append(auth)
                return httpx.Response(401, json={"flows": [{"stages": f} for f in self.flows], "params": self.params,
                                                 "session": "S1", **({"errcode": "M_FORBIDDEN", "error": "Invalid password"} if auth else {})})
            self.auth_seen.append(auth)
            self.signing_keys = body
            return httpx.Response(200, json={})
        if request.url.path.endswith("/keys/signatures/upload"):
            signature = body[USER]["BOTDEVICE"]["signatures"][USER]
            self.device["signatures"][USER].update(signature)
            return httpx.Response(200, json={"failures": {}})
        return httpx.Response(404, json={"errcode": "M_UNRECOGNIZED"})

    def signing(self, tmp_path: Path, password: str | None) -> tuple[KeysAPI, CrossSigning]:
        api = KeysAPI("http://hs.invalid", lambda: "token", transport=httpx.MockTransport(self.handle))
        return api, CrossSigning(api, user_id=USER, device_id="BOTDEVICE", device_ed25519=self.device_key.public,
                                 path=tmp_path / "keys.json", password=lambda: password)


async def test_the_password_answers_interactive_auth_when_the_homeserver_asks(tmp_path: Path) -> None:
    server = FakeHomeserver([["m.login.password"]])
    api, signing = server.signing(tmp_path, "bot-password")
    status = await signing.ensure()
    await api.aclose()
    assert status.ready and status.device_signed, status
    assert server.auth_seen == [{"type": "m.login.password", "identifier": {"type": "m.id.user", "user": USER},
                                 "password": "bot-password", "session": "S1"}]
    keys = load_keys(tmp_path / "keys.json", USER)
    assert keys is not None and server.signing_keys["master_key"]["keys"] == {keys.master.key_id: keys.master.public}


async def test_without_a_password_the_bot_says_what_to_do(tmp_path: Path) -> None:
    server = FakeHomeserver([["m.login.password"]])
    api, signing = server.signing(tmp_path, None)
    status = await signing.ensure()
    await api.aclose()
    assert status.state == "needs-auth" and not server.signing_keys
    assert "set bot.password" in status.detail and "restart the bot" in status.detail


async def test_a_wrong_password_is_reported_as_such(tmp_path: Path) -> None:
    server = FakeHomeserver([["m.login.password"]])
    api, signing = server.signing(tmp_path, "not-it")
    status = await signing.ensure()
    await api.aclose()
    assert status.state == "needs-auth" and "refused the bot's password" in status.detail
    assert "not-it" not in status.detail


async def test_under_mas_the_bot_points_at_the_approval(tmp_path: Path) -> None:
    url = "https://auth.example.org/account?action=org.matrix.cross_signing_reset"
    server = FakeHomeserver([["m.oauth"], ["org.matrix.cross_signing_reset"]], {"m.oauth": {"url": url}})
    api, signing = server.signing(tmp_path, "bot-password")
    status = await signing.ensure()
    await api.aclose()
    assert status.state == "needs-auth" and "MAS" in status.detail and url in status.detail
    assert "reset-cross-signing" in status.detail


async def test_a_hostile_keys_answer_is_a_bad_response_not_a_crash() -> None:
    from bot.matrix.crypto.keys_api import KeysAPIError

    deep = b"[" * 100_000 + b"]" * 100_000
    api = KeysAPI("http://hs.invalid", lambda: "token",
                  transport=httpx.MockTransport(lambda request: httpx.Response(200, content=deep)))
    try:
        with pytest.raises(KeysAPIError) as raised:
            await api.query([USER])
    finally:
        await api.aclose()
    assert raised.value.errcode == "M_BAD_RESPONSE"
