from __future__ import annotations

from bot.text.render import MAX_CONTENT_BYTES, edit_content, notice_content, render, render_fitting
from bot.text.views import Bytes, Code, Doc, Record, Table, Text, When


def test_user_text_is_escaped_in_html_and_kept_in_the_body() -> None:
    rendered = render(Record("<script>alert(1)</script>", [("name", "<img src=x onerror=alert(1)>"), ("id", Code("@a:b<c>"))]))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<img" not in rendered.html
    assert "<code>@a:b&lt;c&gt;</code>" in rendered.html
    assert "<img src=x onerror=alert(1)>" in rendered.body


def test_values_are_formatted_by_kind() -> None:
    rendered = render(Record(None, [("t", When(1706659200000)), ("s", Bytes(10 * 1024 * 1024)), ("b", True), ("n", None), ("l", ["a", "b"])]))
    assert "t: 2024-01-31 00:00 UTC" in rendered.body
    assert "s: 10 MiB" in rendered.body
    assert "b: yes" in rendered.body and "n: —" in rendered.body and "l: a, b" in rendered.body


def test_tables_show_total_and_the_next_page() -> None:
    table = Table("Users", ["user", "name"], [[Code("@a:b"), "A"]], total=40, next_from="1", next_hint="!admin user list --from 1")
    rendered = render(table)
    assert "1 shown of 40" in rendered.body and "next page: !admin user list --from 1" in rendered.body
    assert "<table>" in rendered.html and "<th>user</th>" in rendered.html


def test_every_content_has_empty_mentions_edits_included() -> None:
    rendered = render(Text("@room hello"))
    content = notice_content(rendered, reply_to="$cmd")
    assert content["m.mentions"] == {} and content["msgtype"] == "m.notice"
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}
    edit = edit_content(rendered, target_event_id="$prompt")
    assert edit["m.mentions"] == {} and edit["m.new_content"]["m.mentions"] == {}
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$prompt"}
    threaded = notice_content(rendered, reply_to="$cmd", thread_root="$root")
    assert threaded["m.relates_to"]["rel_type"] == "m.thread" and threaded["m.relates_to"]["event_id"] == "$root"


def test_huge_tables_are_cut_to_fit_one_event() -> None:
    rows = [[Code(f"@user{i}:example.org"), "x" * 200] for i in range(2000)]
    rendered = render_fitting(Doc(Table("Users", ["user", "name"], rows, total=2000)))
    assert len(rendered.body.encode()) + len(rendered.html.encode()) <= MAX_CONTENT_BYTES
    assert "cut to fit one message" in rendered.body
