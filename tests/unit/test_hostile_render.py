"""Hostile input meets the renderer: bounded, single-line, no invisible controls, events that always
fit (escaped, edited, encrypted), values of any type, and only the HTML the Matrix spec allows."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from nio.crypto.sessions import OutboundGroupSession

from bot.text import untrusted
from bot.text.render import (
    CONTENT_BUDGET, SendForm, csv_cell, csv_value, edit_content, event_size, fit, fit_content, megolm_ciphertext_length, render,
    plain_value, render_fitting,
)
from bot.inbox.views import minimal_notice_view, notice_view
from bot.records import ReportFacts, ReportRecord
from bot.text.views import (
    Attachment, Bytes, Code, Doc, Items, JobStarted, Preformatted, PrivateSecret, Record, Shown, Strong, Table, Text,
    Untrusted, When,
)

RLO, ZWSP, LRI = "\u202e", "\u200b", "\u2066"
FORGED = "spam\n✅ Confirmed\u2028state: resolved by @alice:example.org\u2029"


def _record(reason: str, *, room_name: str = "Room", excerpt: str = "hello") -> ReportRecord:
    facts = ReportFacts(kind="event", report_id=7, received_ts=1_706_659_200_000, reporter="@rep:hs", target="@off:hs",
                        room_id="!r:hs", room_name=room_name, event_id="$e", reason=reason, score=-100, excerpt=excerpt)
    return ReportRecord(facts, "open", None, None, None, None, None, None, None, "posted", 0)


# -- one place that makes outside text safe


def test_inline_text_is_one_line_without_invisible_characters_and_visibly_clipped() -> None:
    text = untrusted.inline(f"a{RLO}b{ZWSP}c{LRI}d\u200e\u061c" + FORGED + "x" * 1000, 80)
    assert "\n" not in text and "\u2028" not in text and "\u2029" not in text
    assert not set(text) & untrusted.INVISIBLE
    assert text.startswith("abcd") and "↵ ✅ Confirmed ↵ state: resolved" in text
    assert len(text) == 80 and text.endswith("…")
    zalgo = untrusted.inline("Z" + "\u0301" * 500 + "end", 50)
    assert zalgo == "Z" + "\u0301" * untrusted.MAX_COMBINING + "end"


def test_verbatim_blocks_show_invisible_characters_instead_of_hiding_them() -> None:
    assert untrusted.show_invisible(f"evil{RLO}gnp.exe") == "evil<U+202E>gnp.exe"


def test_outside_text_cannot_forge_lines_of_a_reply() -> None:
    rendered = render(notice_view(_record(FORGED, room_name=f"Room{RLO}\nstate: resolved"), "!admin"))
    lines = rendered.body.split("\n")
    assert not any(line.startswith("✅ Confirmed") or line.startswith("state: resolved") for line in lines)
    assert sum(line.startswith("state:") for line in lines) == 1
    assert RLO not in rendered.body and RLO not in rendered.html
    assert "<br>" not in rendered.html.split("<b>reason</b>")[1].split("</li>")[0]


def test_unmarked_strings_in_fields_still_stay_on_one_line_and_lose_bidi_controls() -> None:
    rendered = render(Record(f"Title\n{RLO}forged", [("name", "a\nfake: line" + ZWSP)]))
    assert rendered.body.split("\n")[0].startswith("Title ↵ forged")
    assert "name: a ↵ fake: line" in rendered.body and ZWSP not in rendered.body


# -- events that always fit


@pytest.mark.parametrize("reason", ['"' * 11_000, "<" * 30_000, "語" * 4_000, "😀" * 20_000, "&" * 60_000])
@pytest.mark.parametrize("form", [
    SendForm(), SendForm(encrypted=True, room_id="!r:hs"), SendForm(edit_of="$notice"),
    SendForm(encrypted=True, edit_of="$notice", room_id="!r:hs"),
])
def test_a_report_notice_fits_in_every_form_whatever_its_reason(reason: str, form: SendForm) -> None:
    record = _record(reason, room_name=reason, excerpt=reason)
    content = fit_content(notice_view(record, "!admin"), form, minimal=minimal_notice_view(record, "!admin"))
    assert event_size(content, form) <= CONTENT_BUDGET
    assert "report 7" in content["body"]


def test_a_view_too_large_to_shorten_becomes_the_minimal_notice_with_the_id() -> None:
    # Thousands of fields are not cut by rows or text lengths: only the minimal form fits.
    record = _record("r")
    huge = Record("Report 7", [(f"field {i} " + "k" * 60, "v") for i in range(5_000)])
    form = SendForm(encrypted=True, edit_of="$n", room_id="!r:hs")
    content = fit_content(huge, form, minimal=minimal_notice_view(record, "!admin"))
    assert event_size(content, form) <= CONTENT_BUDGET
    assert "report 7" in content["m.new_content"]["body"] and "!admin report show 7" in content["m.new_content"]["body"]


def test_a_view_that_cannot_be_rendered_becomes_the_minimal_notice_unless_strict() -> None:
    # A report notice goes out through the non-strict path: a renderer failure must still send something.
    record = _record("r")
    minimal = minimal_notice_view(record, "!admin")
    rendered = fit(object(), SendForm(), minimal=minimal)
    assert "report 7" in rendered.body and "!admin report show 7" in rendered.body
    with pytest.raises(TypeError):
        fit(object(), SendForm(), minimal=minimal, strict=True)


def test_a_minimal_notice_that_is_itself_too_large_is_cut_to_a_short_text_that_fits() -> None:
    # The last resort: whatever the minimal view holds, the event sent still fits.
    huge_minimal = Record("Report 7", [(f"field {i} " + "k" * 60, "v") for i in range(5_000)])
    form = SendForm(encrypted=True, edit_of="$n", room_id="!r:hs")
    rendered = fit(object(), form, minimal=huge_minimal)
    assert rendered.body.startswith("Report 7") and len(rendered.body) <= 500
    assert event_size(form.content(rendered), form) <= CONTENT_BUDGET


def test_tables_lose_rows_and_verbatim_blocks_are_cut_before_giving_up() -> None:
    rows = [[Code(f"@u{i}:hs"), Untrusted("語" * 200)] for i in range(3_000)]
    rendered = render_fitting(Doc(Table("Users", ["user", "name"], rows, total=3_000)))
    assert "cut to fit one message" in rendered.body and "@u0:hs" in rendered.body
    block = render_fitting(Preformatted(json.dumps({"k": '"' * 200_000})))
    assert "cut to fit one message" in block.body
    assert event_size(edit_content(block, target_event_id="$x"), SendForm(encrypted=True, edit_of="$x")) <= CONTENT_BUDGET


def test_the_megolm_size_estimate_is_never_below_a_real_ciphertext() -> None:
    session = OutboundGroupSession()
    session.shared = True
    for size in (0, 1, 15, 16, 17, 100, 1_000, 12_345, 40_000, 65_000):
        actual = len(session.encrypt("a" * size))
        assert actual <= megolm_ciphertext_length(size) <= actual + 32


def test_the_encrypted_estimate_counts_ascii_escapes_of_cjk() -> None:
    # nio encrypts JSON with ASCII escapes: 4,000 CJK characters are 24 KB of plaintext, per copy.
    content = {"body": "語" * 4_000, "formatted_body": "語" * 4_000}
    plain = event_size(content, SendForm())
    encrypted = event_size(content, SendForm(encrypted=True))
    assert plain < 25_000 < 48_000 * 4 // 3 < encrypted


# -- any value renders


@pytest.mark.parametrize("value", [
    When(2**53 - 1), When(-(2**53)), When("yesterday"), When(float("nan")), Bytes(10**40), Bytes(-5), Bytes("big"),
    {"a": "dict"}, object(), 10**400, float("inf"), [When(2**63), None, True],
])
def test_any_value_a_server_sends_renders(value: Any) -> None:
    rendered = render(Doc(Record("r", [("v", value)]), Table(None, ["v"], [[value]]), Items(None, [value]), Text("x")))
    assert rendered.body
    assert "out of range" in render(When(2**53 - 1)).body


# -- HTML: only what the Matrix spec recommends clients allow


ALLOWED_TAGS = {
    "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub", "li", "b", "i",
    "u", "strong", "em", "s", "code", "hr", "br", "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre",
    "span", "img", "details", "summary",
}
ALLOWED_ATTRIBUTES = {
    "font": {"color", "data-mx-bg-color", "data-mx-color"}, "span": {"data-mx-bg-color", "data-mx-color",
                                                                     "data-mx-spoiler", "data-mx-maths"},
    "a": {"name", "target", "href"}, "img": {"width", "height", "alt", "title", "src"}, "ol": {"start"},
    "code": {"class"}, "div": {"data-mx-maths"},
}
HOSTILE = f'<script>alert(1)</script><img src=x onerror=alert(1)> " \' & {RLO}{ZWSP}\n</code></pre><a href="javascript:x">'


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            if name not in ALLOWED_ATTRIBUTES.get(tag, set()):
                self.problems.append(f"attribute {name} on {tag}")
            if tag == "code" and name == "class" and not (value or "").startswith("language-"):
                self.problems.append(f"class {value}")

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"end tag {tag}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _every_view() -> list[Any]:
    values: list[Any] = [HOSTILE, Code(HOSTILE), Strong(HOSTILE), Shown("pass<word>"), Untrusted(HOSTILE), When(2**60),
                         Bytes(5), None, True, 3, 2.5, [HOSTILE, Code(HOSTILE)]]
    table = Table(HOSTILE, [HOSTILE, "b"], [[v, Untrusted(HOSTILE)] for v in values], total=99, next_from=HOSTILE,
                  next_hint=HOSTILE)
    record = Record(HOSTILE, [(HOSTILE, v) for v in values])
    return [
        Text(*[v for v in values if isinstance(v, (str, Code, Strong, Shown, Untrusted, When, Bytes))], tone="error"),
        record, table, Table(HOSTILE, ["a"], [], empty=HOSTILE), Items(HOSTILE, values), Preformatted(HOSTILE, HOSTILE),
        Preformatted(HOSTILE), JobStarted(1, record), Attachment("f.csv", "/tmp/x", "text/csv", caption=Text(HOSTILE)),
        Doc(record, table, Text(HOSTILE)), notice_view(_record(HOSTILE, room_name=HOSTILE, excerpt=HOSTILE), "!admin"),
        PrivateSecret(public=record, secret=Text(Shown(HOSTILE)), what=HOSTILE, if_undelivered=Text(HOSTILE)),
        HOSTILE, None,
    ]


@pytest.mark.parametrize("view", _every_view(), ids=lambda v: type(v).__name__)
def test_html_uses_only_allowed_tags_and_attributes_and_user_text_never_becomes_markup(view: Any) -> None:
    for rendered in (render(view), render_fitting(view), fit(view, SendForm(encrypted=True))):
        checker = _Checker()
        checker.feed(rendered.html)
        checker.close()
        assert checker.problems == [], checker.problems
        assert "<script" not in rendered.html and "<img" not in rendered.html and "<a " not in rendered.html
        # What the user wrote comes back as text, never as markup.
        if isinstance(view, (Record, Table)) or isinstance(view, str):
            assert any("<script>alert(1)</script>" in chunk for chunk in checker.text)


# -- exports


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    for formula in ("=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(formula) == "'" + formula
    assert csv_cell("Alice") == "Alice" and csv_cell("") == "" and csv_cell("a=b") == "a=b"


def test_an_exported_cell_is_the_plain_value_made_safe_for_spreadsheets_whatever_its_type() -> None:
    # csv_value is csv_cell(plain_value(v)) with a quicker path for the common types: each one, and
    # the hostile texts that the quicker path must not let through, come out the same both ways.
    texts = ["Alice", "", "=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", f"{RLO}=cmd", f"={ZWSP}", f"a{LRI}b",
             "two  spaces", " lead", "trail ", "line\nbreak", "x" * 700, "\x00=1", "é=1", "=é"]
    values: list[object] = [*texts, *(Code(t) for t in texts), *(Untrusted(t, 20) for t in texts),
                            *(Strong(t) for t in texts), *(Shown(t) for t in texts),
                            When(0), When(None), When(1_706_659_200_000), When(1_706_659_201_500), When(-5),
                            None, True, False, 0, -3, 1234567, 2.5, -0.5, Bytes(2048), Bytes(None),
                            ["=a", "b"], [], [Code("=x"), When(1_706_659_200_000)]]
    for value in values:
        assert csv_value(value) == csv_cell(plain_value(value)), value
    assert csv_value("=1+1") == "'=1+1" and csv_value(Code("@x")) == "'@x" and csv_value(f"{RLO}=cmd") == "'=cmd"
