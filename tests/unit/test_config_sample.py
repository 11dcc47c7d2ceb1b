from __future__ import annotations

import re
from pathlib import Path

from bot import config as config_module

SAMPLE = Path(__file__).resolve().parents[2] / "config.sample.yaml"
TOKEN = {"SYNAPSE_ADMIN_BOT_ACCESS_TOKEN": "syt_from_the_environment"}
# Optional keys whose commented-out line shows the default (the others show an alternative or an example).
DEFAULTS_SHOWN = ("admin_api_url", "device_name", "command_prefix", "path", "enabled", "require_cross_signed_senders",
                  "poll_interval", "reminder_after", "reminder_every", "timeout", "max_concurrency", "exempt_bot",
                  "pin_identities", "two_person")


def test_the_sample_config_is_valid_and_documents_every_key(tmp_path: Path) -> None:
    loaded = config_module.load(SAMPLE, environ=TOKEN)
    assert loaded.mas is None  # documented, commented out
    text = SAMPLE.read_text()
    for key in config_module._TOP_LEVEL_KEYS:
        assert re.search(rf"^(# )?{key}:", text, re.M), f"config.sample.yaml does not document {key}"
    for key in ("url", "admin_api_url", "user_id", "access_token", "access_token_file", "password", "password_file",
                "device_id", "device_name", "admins", "moderators", "viewers", "path", "enabled",
                "require_cross_signed_senders", "poll_interval", "reminder_after", "reminder_every", "timeout", "bind",
                "max_concurrency", "exempt_bot",
                "client_id", "client_secret", "client_secret_file", "client_auth_method"):
        assert re.search(rf"^\s*#?\s*{key}:", text, re.M), f"config.sample.yaml does not document {key}"


def test_every_optional_key_is_commented_out_at_its_default(tmp_path: Path) -> None:
    """A copy with only the required keys set holds no live example value: no separate Admin API URL or
    token, no device, no metrics listener; and uncommenting a key's line changes nothing."""
    loaded = config_module.load(SAMPLE, environ=TOKEN)
    assert loaded.metrics.bind is None
    assert loaded.homeserver.admin_api_url == loaded.homeserver.url
    assert loaded.admin_token is None and loaded.bot.device_id is None and loaded.bot.password is None
    live = [line.split(":")[0].strip() for line in SAMPLE.read_text().splitlines()
            if re.match(r"^\s*[a-z_]+:", line)]
    assert live == ["homeserver", "url", "bot", "user_id", "access_token_file", "admin_api", "admin_rooms", "access",
                    "admins", "moderators", "viewers", "storage", "encryption", "reports", "confirmations", "jobs",
                    "approval", "metrics", "rate_limits", "mas"], live
    uncommented = re.sub(rf"^(\s*)# ({'|'.join(DEFAULTS_SHOWN)}):", r"\1\2:", SAMPLE.read_text(), flags=re.M)
    assert uncommented.count("\n") == SAMPLE.read_text().count("\n")
    copy = tmp_path / "config.yaml"
    copy.write_text(uncommented)
    for key in DEFAULTS_SHOWN:
        assert re.search(rf"^\s*{key}:", uncommented, re.M), key
    explicit = config_module.load(copy, environ=TOKEN)
    for part in ("homeserver", "encryption", "reports", "confirmations", "jobs", "metrics", "rate_limits", "approval",
                 "command_prefix"):
        assert getattr(explicit, part) == getattr(loaded, part), part
    assert explicit.bot.device_name == loaded.bot.device_name
    assert explicit.storage.path == tmp_path / "data" / "state.db" and loaded.storage.path == SAMPLE.parent / "data" / "state.db"
