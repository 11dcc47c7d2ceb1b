"""bot/mas_api knows httpx and its own models: never Matrix, commands, rendering or storage."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_mas_client_imports_no_higher_layer() -> None:
    probe = "import json, sys, bot.mas_api; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout)
    ours = {m for m in loaded if m == "bot" or m.startswith(("bot.", "commands"))}
    allowed = ("bot.mas_api", "bot.admin_api", "bot.ids")  # the Synapse client's error kinds; the segment rules
    assert {m for m in ours if m != "bot" and not m.startswith(allowed)} == set()
    assert not {m for m in loaded if m.split(".")[0] in ("nio", "sqlite3", "aiohttp", "yaml")}
