"""What measuring the final event costs: `render` (the baseline: one rendering, nothing measured)
beside `fit` (rendered, built as the event it will be — an encrypted edit, the largest form —
measured, and shortened until it fits), for a typical reply, a hostile report notice and a huge
table.

    python bench/fit.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.text.render import SendForm, event_size, fit, render  # noqa: E402
from bot.inbox.views import minimal_notice_view, notice_view  # noqa: E402
from bot.records import ReportFacts, ReportRecord  # noqa: E402
from bot.text.views import Code, Table, Untrusted, When  # noqa: E402

FORM = SendForm(encrypted=True, edit_of="$" + "x" * 43, room_id="!" + "x" * 30 + ":example.org")


def _notice(reason: str) -> Any:
    facts = ReportFacts(kind="event", report_id=7, received_ts=1_706_659_200_000, reporter="@rep:example.org",
                        target="@spammer:example.org", room_id="!r:example.org", room_name=reason, event_id="$e",
                        reason=reason, score=-100, excerpt=reason)
    record = ReportRecord(facts, "open", None, None, None, None, None, None, None, "posted", 0)
    return notice_view(record, "!admin"), minimal_notice_view(record, "!admin")


def _table(rows: int, text: str) -> Table:
    return Table("Users", ["user", "name", "seen"],
                 [[Code(f"@user{i}:example.org"), Untrusted(text), When(1_706_659_200_000 + i)] for i in range(rows)],
                 total=rows)


def _time(fn: Any, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    cases = {
        "user list, 50 rows": (_table(50, "Alice Example"), None),
        "report notice, reason of 11,000 \"": _notice('"' * 11_000),
        "report notice, 4,000 CJK characters": _notice("語" * 4_000),
        "table, 3,000 rows of 200 CJK": (_table(3_000, "語" * 200), None),
    }
    print(f"{'case':40} {'render ms':>10} {'fit ms':>10} {'fitted bytes':>13}")
    for name, (view, minimal) in cases.items():
        base = _time(lambda: render(view), args.rounds)
        fitted = _time(lambda: fit(view, FORM, minimal=minimal), args.rounds)
        size = event_size(FORM.content(fit(view, FORM, minimal=minimal)), FORM)
        print(f"{name:40} {base:10.2f} {fitted:10.2f} {size:13,}")


if __name__ == "__main__":
    main()
