from __future__ import annotations

import re
from pathlib import Path

from bot import config as config_module

SAMPLE = Path(__file__).resolve().parents[2] / "config.sample.yaml"


def test_the_sample_config_is_valid_and_documents_every_key(tmp_path: Path) -> None:
    loaded = config_module.load(SAMPLE, environ={})
    assert loaded.metrics.bind == ("127.0.0.1", 9464)
    assert loaded.mas is None  # documented, commented out
    text = SAMPLE.read_text()
    for key in config_module._TOP_LEVEL_KEYS:
        assert re.search(rf"^{key}:", text, re.M), f"config.sample.yaml does not document {key}"
    for key in ("url", "admin_api_url", "user_id", "access_token", "access_token_file", "password", "password_file",
                "device_id", "device_name", "admins", "moderators", "viewers", "path", "enabled",
                "require_cross_signed_senders", "poll_interval", "reminder_after", "reminder_every", "timeout", "bind",
                "max_concurrency", "exempt_bot",
                "client_id", "client_secret", "client_secret_file", "client_auth_method"):
        assert re.search(rf"^\s*#?\s*{key}:", text, re.M), f"config.sample.yaml does not document {key}"
