"""Moderation policy lists the team follows (`policy_lists` in the config): rooms whose state
events `m.policy.rule.user|room|server` (and the older `org.matrix.mjolnir.rule.*` and
`m.room.rule.*` names) say which users, rooms and servers a community bans, by glob (`*` any
characters, `?` one character).

The bot only reads them: a report notice and a dossier name the rules the reported user, their
server or the room match, with the list's name and the rule's reason. Nothing here acts on a rule.

A list is hostile input like any room. Its size is bounded (MAX_RULES_PER_LIST), its texts are
clipped when stored (an entity longer than a Matrix ID cannot match one and is ignored; a reason is
kept to REASON_CHARS), and matching is bounded in time whatever the globs say:
- rules without a wildcard are looked up in a dict;
- globs are compiled once, with `fnmatch.translate`, whose regexes use atomic groups: no
  backtracking, so `*a*a*a*a*b` against a long ID costs a pass per star, not an explosion;
- globs are indexed by their literal tail or head (the longer): a name is tried only against the
  globs whose literal end is one of its own ends (a dict lookup per length of literal end); those with no literal end at all are tried in chunks behind one
  combined regex each, which answers "none of these" at once for the usual name;
- at most MAX_HITS matching rules are collected per name;
- a change of the rules builds the index again in a thread, at most every REBUILD_EVERY_S, while
  matching goes on with the index in use: a list that changes at every sync cannot stall notices.
bench/policy_match.py measures it beside a plain fnmatch over every rule.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.text import untrusted
from bot.records import record

USER, ROOM, SERVER = "user", "room", "server"
RULE_TYPES: dict[str, str] = {}
for _prefix in ("m.policy.rule.", "org.matrix.mjolnir.rule.", "m.room.rule."):
    for _kind in (USER, ROOM, SERVER):
        RULE_TYPES[_prefix + _kind] = _kind
BAN_RECOMMENDATIONS = frozenset({"m.ban", "org.matrix.mjolnir.ban"})
NAME_TYPES = ("m.room.name", "m.room.canonical_alias")

MAX_RULES_PER_LIST = 50_000  # beyond this, a list's further rules are ignored (and counted)
ENTITY_CHARS = 255  # a Matrix ID is at most 255 bytes: a longer entity matches nothing real
REASON_CHARS = 300  # what is kept of a rule's reason (the views clip it further)
NAME_CHARS = 120
MAX_HITS = 20  # matching rules collected per name at most
REBUILD_EVERY_S = 1.0  # the index is built again at most this often (off the event loop)
CHUNK = 200  # globs with no literal end, per combined regex

_WILD = re.compile(r"[*?]")
log = logging.getLogger(__name__)


@record
class PolicyRule:
    """One rule of a followed policy list: whom or what it names (a glob), why, and what it recommends."""

    list_id: str  # the list room
    kind: str  # user | room | server
    entity: str  # the glob
    reason: str
    recommendation: str


@record
class PolicyHit:
    """A rule a name matched: which list, its name when it has one, and why it bans."""

    rule: PolicyRule
    list_name: str | None
    matched: str  # the name that matched: the user, their server, or the room


@dataclass
class _List:
    """What the bot holds of one policy list room: its name and alias, its rules, how many it ignored."""

    name: str | None = None
    alias: str | None = None
    rules: dict[tuple[str, str], PolicyRule] = field(default_factory=dict)  # (event type, state key) → rule
    ignored: int = 0


class _Glob:
    """A glob rule; its regex is compiled when a name first reaches it (most never are)."""

    __slots__ = ("rule", "pattern", "_regex")

    def __init__(self, rule: PolicyRule, case_fold: bool) -> None:
        self.rule = rule
        self.pattern = fnmatch.translate(rule.entity.lower() if case_fold else rule.entity)
        self._regex: re.Pattern[str] | None = None

    def match(self, name: str) -> bool:
        if self._regex is None:
            self._regex = _compiled(self.pattern)
        return self._regex.match(name) is not None


def _compiled(pattern: str, cache: dict[str, re.Pattern[str]] = {}) -> re.Pattern[str]:  # noqa: B006 (a cache)
    """The regexes of globs, kept across rebuilds of the index (a list changes a rule at a time)."""
    found = cache.get(pattern)
    if found is None:
        if len(cache) > 4 * MAX_RULES_PER_LIST:
            cache.clear()
        found = cache[pattern] = re.compile(pattern)
    return found


class _Index:
    """One kind's rules, ready to match: exact ones by value, globs by their literal ends."""

    def __init__(self, rules: Iterable[PolicyRule], *, case_fold: bool) -> None:
        self.case_fold = case_fold
        self.exact: dict[str, list[PolicyRule]] = {}
        self.by_tail: dict[str, list[_Glob]] = {}
        self.by_head: dict[str, list[_Glob]] = {}
        self.loose: list[_Glob] = []
        for rule in rules:
            entity = rule.entity.lower() if case_fold else rule.entity
            if not _WILD.search(entity):
                self.exact.setdefault(entity, []).append(rule)
                continue
            glob = _Glob(rule, case_fold)
            pieces = _WILD.split(entity)
            head, tail = pieces[0], pieces[-1]
            if tail and len(tail) >= len(head):
                self.by_tail.setdefault(tail, []).append(glob)
            elif head:
                self.by_head.setdefault(head, []).append(glob)
            else:
                glob.match("")  # compiled now: a name that passes its chunk's regex tries each of them
                self.loose.append(glob)
        # The lengths of the literal ends there are: a name is looked up by its ends of these lengths.
        self.tail_lengths = sorted({len(key) for key in self.by_tail})
        self.head_lengths = sorted({len(key) for key in self.by_head})
        self.chunks = [
            (_compiled("|".join(f"(?:{g.pattern})" for g in part)), part)
            for part in (self.loose[i:i + CHUNK] for i in range(0, len(self.loose), CHUNK))
        ]

    def match(self, name: str, limit: int) -> list[PolicyRule]:
        if self.case_fold:
            name = name.lower()
        found = list(self.exact.get(name, ()))[:limit]
        for size in self.tail_lengths:
            if size > len(name) or len(found) >= limit:
                break
            found += [g.rule for g in self.by_tail.get(name[-size:], ()) if g.match(name)][: limit - len(found)]
        for size in self.head_lengths:
            if size > len(name) or len(found) >= limit:
                break
            found += [g.rule for g in self.by_head.get(name[:size], ()) if g.match(name)][: limit - len(found)]
        for combined, part in self.chunks:
            if len(found) >= limit:
                break
            if combined.match(name):
                found += [g.rule for g in part if g.match(name)][: limit - len(found)]
        return found


class PolicyBook:
    """The rules of the followed lists, kept from the lists' room state as sync brings it. Fed by
    the Matrix client (`update`), asked by the inbox and the dossier (`match`)."""

    def __init__(self, lists: Iterable[str] = ()) -> None:
        self.configured = tuple(lists)
        self._lists: dict[str, _List] = {}
        self._index: dict[str, _Index] | None = None
        self._stale = False  # rules changed since the index was built
        self._building: asyncio.Task[None] | None = None
        self._last_build = 0.0
        self.indexed = 0  # how many rules the index in use holds
        self.updates = 0

    # -- feeding

    def update(self, room_id: str, events: Iterable[Mapping[str, Any]]) -> int:
        """State events of a list room (a sync's state and timeline, in order): rules added,
        changed, or removed (an event with no entity or no ban recommendation removes the rule of
        its type and state key). Returns how many rules changed."""
        book = self._lists.setdefault(room_id, _List())
        changed = 0
        for event in events:
            etype = event.get("type")
            key = event.get("state_key")
            content = event.get("content")
            if not isinstance(etype, str) or not isinstance(key, str) or not isinstance(content, Mapping):
                continue
            if etype == "m.room.name":
                book.name = _text(content.get("name"), NAME_CHARS) or None
                continue
            if etype == "m.room.canonical_alias":
                book.alias = _text(content.get("alias"), NAME_CHARS) or None
                continue
            kind = RULE_TYPES.get(etype)
            if kind is None:
                continue
            rule = _rule(room_id, kind, content)
            slot = (etype, key)
            if rule is None:
                changed += book.rules.pop(slot, None) is not None
                continue
            if slot not in book.rules and len(book.rules) >= MAX_RULES_PER_LIST:
                book.ignored += 1
                continue
            if book.rules.get(slot) != rule:
                book.rules[slot] = rule
                changed += 1
        if changed:
            self.updates += 1
            self._stale = True
            self._rebuild_later()
        return changed

    # -- the index: built again off the event loop, at most every REBUILD_EVERY_S

    def _rebuild_later(self) -> None:
        """With a running event loop: build the new index in a thread while matching goes on with
        the one in use (a list that changes a rule at every sync costs one build a second, never a
        build per notice). Without one (tools, tests): at the next match."""
        if self._building is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._building = loop.create_task(self._rebuild())

    async def _rebuild(self) -> None:
        try:
            while self._stale:
                await asyncio.sleep(max(0.0, self._last_build + REBUILD_EVERY_S - time.monotonic()))
                self._stale = False
                rules = self._snapshot()
                self._last_build = time.monotonic()
                self._index = await asyncio.to_thread(_build, rules)
                self.indexed = len(rules)
        except Exception:
            log.exception("building the policy lists' index failed; matching goes on with the one before")
        finally:
            self._building = None

    def _snapshot(self) -> list[PolicyRule]:
        return [rule for book in self._lists.values() for rule in book.rules.values()]

    def _indexes(self) -> dict[str, _Index]:
        if self._index is None or (self._stale and self._building is None):
            rules = self._snapshot()
            self._index, self._stale, self.indexed = _build(rules), False, len(rules)
        return self._index

    # -- asking

    def list_name(self, room_id: str) -> str | None:
        book = self._lists.get(room_id)
        return (book.name or book.alias) if book else None

    def rule_count(self) -> int:
        return sum(len(book.rules) for book in self._lists.values())

    def lists(self) -> dict[str, int]:
        """Each followed list room and how many rules it holds."""
        return {room_id: len(book.rules) for room_id, book in self._lists.items()}

    def match(self, *, user: str | None = None, rooms: Iterable[str | None] = (), limit: int = MAX_HITS) -> list[PolicyHit]:
        """The rules that the user, the user's server, or the room (by ID or alias) match, at most `limit`."""
        if not self._lists:
            return []
        index = self._indexes()
        asked: list[tuple[str, str]] = []
        if user and len(user) <= ENTITY_CHARS:
            asked.append((USER, user))
            server = user.split(":", 1)[1] if ":" in user else ""
            if server:
                asked.append((SERVER, server))
        asked += [(ROOM, room) for room in rooms if room and len(room) <= ENTITY_CHARS]
        hits: list[PolicyHit] = []
        for kind, name in asked:
            if len(hits) >= limit:
                break
            for rule in index[kind].match(name, limit - len(hits)):
                hits.append(PolicyHit(rule, self.list_name(rule.list_id), name))
        return hits


def _build(rules: list[PolicyRule]) -> dict[str, _Index]:
    return {kind: _Index((r for r in rules if r.kind == kind), case_fold=kind == SERVER) for kind in (USER, ROOM, SERVER)}


def _text(value: Any, limit: int) -> str:
    """Outside text as kept: a string, on one line (breaks shown as ↵), without invisible
    characters, at most `limit` characters (bot/text/untrusted.py; views clip again)."""
    if not isinstance(value, str):
        return ""
    return untrusted.inline(value, limit)


def _rule(room_id: str, kind: str, content: Mapping[str, Any]) -> PolicyRule | None:
    entity = content.get("entity")
    recommendation = content.get("recommendation")
    if not isinstance(entity, str) or not entity or len(entity) > ENTITY_CHARS:
        return None
    if recommendation not in BAN_RECOMMENDATIONS:
        return None
    return PolicyRule(room_id, kind, entity, _text(content.get("reason"), REASON_CHARS), str(recommendation))
