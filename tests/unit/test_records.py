"""`record` behaves as `@dataclass(frozen=True)` does for everything the bot relies on: the same
class body declared both ways gives equal answers."""

from __future__ import annotations

import copy
import inspect
import dataclasses
import pickle
from dataclasses import FrozenInstanceError, field
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from bot.records import from_mapping, record


def both(body: Callable[[], type]) -> tuple[type, type]:
    return record(body()), dataclasses.dataclass(frozen=True)(body())


def plain_body() -> type:
    class Point:
        """A point."""

        x: int
        y: int = 0
        tags: tuple[str, ...] = ()
        secret: str = field(default="", repr=False)
        note: str = field(default="", compare=False)
        kind: ClassVar[str] = "point"

    return Point


def test_a_record_and_a_frozen_dataclass_agree_on_init_repr_equality_and_hash() -> None:
    ours, theirs = both(plain_body)
    for args, kwargs in [((1,), {}), ((1, 2), {"tags": ("a",)}), ((3,), {"secret": "s", "note": "n"})]:
        a, b = ours(*args, **kwargs), theirs(*args, **kwargs)
        assert repr(a) == repr(b) and "secret" not in repr(a)
        assert hash(a) == hash(b)
        assert dataclasses.asdict(a) == dataclasses.asdict(b)
        assert dataclasses.astuple(a) == dataclasses.astuple(b)
        assert a.__match_args__ == b.__match_args__
    assert ours(1, note="a") == ours(1, note="b") and hash(ours(1, note="a")) == hash(ours(1, note="b"))
    assert ours(1) != ours(2) and ours(1) != theirs(1)  # another class is never equal
    assert (ours(1) == object()) is False and ours(1).__eq__(object()) is NotImplemented
    assert {ours(1, 2), ours(1, 2), ours(2)} == {ours(1, 2), ours(2)}
    with pytest.raises(TypeError):
        hash(ours(1, tags=["unhashable"]))  # type: ignore[arg-type]


def test_a_record_cannot_be_changed_once_made() -> None:
    ours, theirs = both(plain_body)
    for made in (ours(1), theirs(1)):
        with pytest.raises(FrozenInstanceError):
            made.x = 2
        with pytest.raises(FrozenInstanceError):
            made.other = 2  # not a field either
        with pytest.raises(FrozenInstanceError):
            del made.y
        assert made.x == 1 and not hasattr(made, "other")
    changed = dataclasses.replace(ours(1), y=5)
    assert (changed.x, changed.y) == (1, 5)
    with pytest.raises(FrozenInstanceError):
        changed.y = 6


def test_copies_and_pickles_come_back_equal_and_still_frozen() -> None:
    made = Pickled(1, ("a",))
    for again in (copy.copy(made), copy.deepcopy(made), pickle.loads(pickle.dumps(made))):
        assert again == made and again is not made
        with pytest.raises(FrozenInstanceError):
            again.x = 2  # type: ignore[misc]


@record
class Pickled:
    """Module level: pickle finds classes by name."""

    x: int
    tags: tuple[str, ...]


def test_own_methods_stay_post_init_may_derive_and_subclasses_compare_their_own_fields() -> None:
    @record
    class Named:
        """With its own repr and a derived field."""

        name: str
        folded: str = field(init=False, default="")

        def __post_init__(self) -> None:
            object.__setattr__(self, "folded", self.name.casefold())

        def __repr__(self) -> str:
            return f"<{self.name}>"

    @record
    class Tagged(Named):
        """A subclass with one more field."""

        tag: str = "t"

    assert repr(Named("A")) == "<A>" and Named("A").folded == "a"
    assert Tagged("A", tag="x") != Tagged("A", tag="y") and Tagged("A") != Named("A")
    assert dataclasses.fields(Tagged)[-1].name == "tag"

    @record
    class Equal:
        """Its own equality, and no hash of its own: as dataclass, the fields are hashed."""

        value: Any

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Equal) and str(self.value) == str(other.value)

    assert Equal(1) == Equal("1") and hash(Equal(1)) == hash((1,))


def test_recursive_records_have_a_repr() -> None:
    @record
    class Box:
        """Holds anything, itself included."""

        items: list[Any]

    box = Box([])
    box.items.append(box)
    assert repr(box) == "test_recursive_records_have_a_repr.<locals>.Box(items=[...])"


def test_a_records_init_is_compiled_when_the_first_one_is_made_and_then_is_the_dataclass_one() -> None:
    @record
    class Base:
        """Never made itself."""

        a: int
        b: list[int] = field(default_factory=list)

    @record
    class Child(Base):
        """Made first."""

        c: str = "c"

    waiting = Base.__init__
    child = Child(1, c="x")
    assert (child.a, child.b, child.c) == (1, [], "x") and type(child) is Child
    assert Base.__init__ is waiting  # only Child's was compiled
    base = Base(2)
    assert Base.__init__ is not waiting and Base.__init__.__qualname__.endswith("Base.__init__")
    assert [p for p in inspect.signature(Base).parameters] == ["a", "b"]
    assert Base(3).b is not base.b  # the default factory, called for each
    with pytest.raises(TypeError):
        Base()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Child(1, 2, "c", "extra")  # type: ignore[call-arg]


def test_a_record_from_a_mapping_is_the_one_init_makes_from_its_known_keys() -> None:
    @record
    class Account:
        name: str
        admin: bool = False
        rooms: list[str] = field(default_factory=list)
        note: str = field(default="", compare=False)

    data = {"name": "@a:hs", "admin": True, "password_hash": "secret", "approved": True}
    made = from_mapping(Account, data)
    assert made == Account(name="@a:hs", admin=True) and repr(made) == repr(Account(name="@a:hs", admin=True))
    assert not hasattr(made, "password_hash") and "password_hash" not in vars(made)
    assert made.rooms == [] and made.rooms is not from_mapping(Account, data).rooms  # a fresh list each
    assert from_mapping(Account, {"name": "@b:hs", "rooms": ["!r"]}).rooms == ["!r"]
    with pytest.raises(FrozenInstanceError):
        made.admin = False
    with pytest.raises(TypeError, match="name"):
        from_mapping(Account, {"admin": True})  # a missing field fails as __init__ fails
    assert data == {"name": "@a:hs", "admin": True, "password_hash": "secret", "approved": True}  # not changed


def test_a_record_from_a_mapping_still_runs_post_init_and_other_classes_go_through_init() -> None:
    @record
    class Checked:
        size: int
        label: str = ""

        def __post_init__(self) -> None:
            if self.size < 0:
                raise ValueError("negative size")
            object.__setattr__(self, "label", self.label or f"size {self.size}")

    assert from_mapping(Checked, {"size": 3, "other": 1}).label == "size 3"
    with pytest.raises(ValueError, match="negative"):
        from_mapping(Checked, {"size": -1})

    @dataclasses.dataclass
    class Plain:
        a: int
        b: int = 2

    assert from_mapping(Plain, {"a": 1, "c": 3}) == Plain(1, 2)
