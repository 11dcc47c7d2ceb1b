"""The console script (`synapse-admin-bot`) and `python -m bot`."""

from __future__ import annotations

import gc


def main() -> int:
    # Importing the bot and matrix-nio allocates some 130,000 objects that live as long as the
    # process: the cyclic collector's passes over them meanwhile find nothing and cost ~50 ms of a
    # start of ~1 s (issue 23). Collection resumes once they are loaded.
    gc.disable()
    try:
        from bot.cli import main as run_command_line
    finally:
        gc.enable()
    return run_command_line()


if __name__ == "__main__":
    raise SystemExit(main())
