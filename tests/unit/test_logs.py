from __future__ import annotations

import io
import json
import logging

from bot.logs import SecretScrubber, configure


def test_secrets_are_scrubbed_from_messages_arguments_and_tracebacks() -> None:
    scrubber = SecretScrubber()
    scrubber.add("syt_secret_token_value")
    scrubber.add("abc")  # too short to scrub safely: ignored
    stream = io.StringIO()
    configure("DEBUG", "json", scrubber, stream)
    log = logging.getLogger("test.scrub")
    log.debug("header Authorization: Bearer %s", "syt_secret_token_value")
    try:
        raise RuntimeError("request failed with token syt_secret_token_value")
    except RuntimeError:
        log.exception("boom")
    text = stream.getvalue()
    assert "syt_secret_token_value" not in text and text.count("***") == 3  # the message, the exception text and the source line in the traceback
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines[0]["level"] == "debug" and "Bearer ***" in lines[0]["message"]
    assert "RuntimeError" in lines[1]["exception"] and "abc" not in lines[1]["exception"]
    logging.getLogger().handlers.clear()
