"""The console script (`synapse-admin-bot`) and `python -m bot`."""

from __future__ import annotations

import gc


def main() -> int:
    # Importing the bot and matrix-nio makes some 130,000 objects that live as long as the process.
    # The cyclic collector would walk them all again and again: during the imports, in the first
    # collections after them (~45 ms, before the first answer), and in every full collection for
    # the rest of the run (30-40 ms each on the event loop). Frozen, it leaves them out (issue 23).
    gc.disable()
    try:
        from bot.cli import main as run_command_line
        import bot.app  # noqa: F401  (what `run` starts, and nio: the bulk of those objects)
    finally:
        gc.freeze()
        gc.enable()
    return run_command_line()


if __name__ == "__main__":
    raise SystemExit(main())
