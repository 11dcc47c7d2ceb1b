from __future__ import annotations

import pytest

from bot.homeserver.admin_api.paths import ADMIN, CLIENT, UnsafePathSegment


def test_segments_from_data_are_percent_encoded() -> None:
    assert str(ADMIN.v1.users["@a:example.org"].joined_rooms) == "/_synapse/admin/v1/users/%40a%3Aexample.org/joined_rooms"
    assert str(ADMIN.v2.rooms["!r:example.org"]) == "/_synapse/admin/v2/rooms/%21r%3Aexample.org"
    assert str(CLIENT.v3.directory.room["#alias:example.org"]) == "/_matrix/client/v3/directory/room/%23alias%3Aexample.org"
    assert str(ADMIN.v1.media["example.org"]["a b%c"]) == "/_synapse/admin/v1/media/example.org/a%20b%25c"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a?x=1", "a#b", "a\\b", "a\nb"])
def test_unsafe_segments_are_refused(bad: str) -> None:
    with pytest.raises(UnsafePathSegment):
        ADMIN.v1.users[bad]


def test_literal_segments_and_equality() -> None:
    assert str(ADMIN.v1.users["x"]._allow_cross_signing_replacement_without_uia).endswith("/x/_allow_cross_signing_replacement_without_uia")
    assert ADMIN.v1.server_version == ADMIN.v1.server_version
