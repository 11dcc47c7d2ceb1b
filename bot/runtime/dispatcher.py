"""The runtime put together: what the Matrix layer hands its events to, and what the app starts.

It builds the parts around the one pipeline (bot/runtime/pipeline.py) and hands each only what it
needs: intake (a Matrix event → a candidate), the sources of invocations (a typed command in
intake, a confirmation, a reaction's built command, an undo, recovery after a kill, a resumed job
in the job runner), the pipeline's steps (prompts, export, secret delivery, the journal, audit)
and the answers. It decides nothing itself: "who may" is the policy's (bot/policy/).

A new source is a module that builds an Invocation (with its requester and source) and calls
`pipeline.run` — bot/runtime/undoing.py is the smallest.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api.services import AuditTrail, BotStatus, ReportDesk
from bot.handler_api.spec import CommandTable
from bot.matrix.rooms import AdminRooms
from bot.matrix.events import IncomingMessage, IncomingReaction, Messenger, UndecryptableMessage
from bot.policy.rules import Policy
from bot.runtime.answers import Answers
from bot.runtime.auditing import AuditWriter
from bot.runtime.confirmations import Confirmations
from bot.runtime.contexts import Contexts
from bot.runtime.delivery import DIRECT_TIMEOUT_S, SecretDelivery
from bot.runtime.held_secrets import HeldSecrets
from bot.runtime.identities import IdentityGuard
from bot.runtime.intake import Intake, ReactionHook
from bot.runtime.jobs import JobRunner
from bot.runtime.journal import CommandJournal
from bot.runtime.outcome import Outcome
from bot.runtime.pipeline import Observer, Pipeline
from bot.runtime.prompts import Prompts
from bot.runtime.recovery import Recovery
from bot.runtime.refusals import RefusalLimiter, Refusals
from bot.runtime.replies import Replies
from bot.runtime.schedules import Schedules
from bot.runtime.timers import TimerBook, TimerSource
from bot.runtime.undo import UndoBook
from bot.runtime.undoing import UndoChecks, UndoSource
from bot.runtime.verbs import RuntimeVerbs
from bot.state.identities import IdentityPins as IdentityPinsStore

if TYPE_CHECKING:
    from bot.state.audit import AuditLog
    from bot.state.confirmations import ConfirmationStore
    from bot.state.jobs import JobStore
    from bot.state.journal import Journal
    from bot.state.meta import MetaStore
    from bot.state.undo import UndoStore
    from bot.state.schedules import ScheduleStore
    from bot.state.timers import TimerStore
    from bot.homeserver.admin_api import AdminAPI
    from bot.homeserver.gate import HomeserverGate
    from bot.homeserver.mas_api import MASAPI
    from bot.mas import MASDetection


class Dispatcher:
    def __init__(
        self,
        *,
        table: CommandTable,
        policy: Policy,
        api: AdminAPI,
        confirmations: ConfirmationStore,
        journal: Journal,
        audit: AuditLog,
        undo: UndoStore,
        job_store: JobStore,
        meta: MetaStore,
        messenger: Messenger,
        jobs: JobRunner,
        prefix: str,
        server_name: str,
        bot_user_id: str,
        confirm_timeout: float,
        require_cross_signed_senders: bool = False,
        pin_identities: bool = True,
        identity_pins: IdentityPinsStore | None = None,
        report_desk: ReportDesk | None = None,
        clock: Callable[[], int] | None = None,
        refusals: RefusalLimiter | None = None,
        direct_timeout: float = DIRECT_TIMEOUT_S,
        gate: HomeserverGate | None = None,
        mas: MASAPI | None = None,
        mas_detection: Callable[[], MASDetection | None] | None = None,
        reaction_hooks: list[ReactionHook] | None = None,
        observers: list[Observer] | None = None,
        undo_book: UndoBook | None = None,
        timers: TimerStore | None = None,
        schedules: ScheduleStore | None = None,
    ) -> None:
        self.clock = clock = clock or (lambda: int(time.time() * 1000))
        self.policy = policy
        self.jobs = jobs
        self.refusals = refusals if refusals is not None else RefusalLimiter()
        self.reaction_hooks: list[ReactionHook] = reaction_hooks if reaction_hooks is not None else []
        self.replies = Replies(messenger, prefix)
        detected = mas_detection or _undetected  # where the accounts live, once the app has asked
        self.answers = Answers(prefix, detected)
        delivery = SecretDelivery(messenger, policy.may_still_run, timeout=direct_timeout)
        self.contexts = Contexts(
            api=api, replies=self.replies, server_name=server_name, bot_user_id=bot_user_id, prefix=prefix,
            clock=clock, report_desk=report_desk, bot_status=BotStatus(confirmations, jobs.running),
            audit_trail=AuditTrail(audit, undo, [c.name for c in table.commands() if c.may_write or c.undo_handler]),
            mas=mas, mas_detection=detected, private_channel=delivery.channel_problem,
        )
        writer = AuditWriter(audit, policy)
        refusing = Refusals(self.refusals, writer, self.replies)
        command_journal = CommandJournal(journal, clock)
        self.undo_book = undo_book or UndoBook(undo, audit, table, self.contexts.env, prefix, jobs=job_store)
        undo_checks = UndoChecks(self.undo_book, policy, self.replies, writer)
        timer_book = TimerBook(timers, policy, prefix, clock) if timers is not None else None
        self.held_secrets = HeldSecrets()  # typed passwords waiting for a confirmation: never in the database
        self.pipeline = Pipeline(
            table=table, policy=policy, api=api, contexts=self.contexts, replies=self.replies, audit=writer,
            refusals=refusing, answers=self.answers, journal=command_journal, undo=undo_checks, jobs=jobs,
            prompts=Prompts(confirmations=confirmations, meta=meta, held_secrets=self.held_secrets,
                            replies=self.replies, audit=writer, answers=self.answers, prefix=prefix,
                            confirm_timeout=confirm_timeout, second_person=policy.needs_second_person),
            delivery=delivery,
            observers=observers if observers is not None else [], timers=timer_book,
        )
        # Commands that run on a schedule: a source of their own (bot/runtime/schedules.py).
        self.schedules = Schedules(
            store=schedules, table=table, env=self.contexts.env, pipeline=self.pipeline, prompts=self.pipeline.prompts,
            policy=policy, replies=self.replies, journal=command_journal, prefix=prefix, clock=clock,
            make_context=self.contexts.make, jobs=job_store,
        ) if schedules is not None else None
        self.confirmations = Confirmations(
            store=confirmations, held_secrets=self.held_secrets, table=table, env=self.contexts.env, policy=policy,
            pipeline=self.pipeline, journal=command_journal, replies=self.replies, audit=writer, answers=self.answers,
            clock=clock, on_schedule=self.schedules.confirmed if self.schedules is not None else None,
            on_schedule_dropped=self.schedules.never_confirmed if self.schedules is not None else None,
        )
        pins = identity_pins if identity_pins is not None else IdentityPinsStore(meta.db)
        # Pinned cross-signing identities (bot/runtime/identities.py), asked by intake when senders must be cross-signed.
        guard = IdentityGuard(pins, messenger, admin_rooms=lambda: list(self.admin_rooms), prefix=prefix,
                              enabled=lambda: self.intake.require_cross_signed_senders and self.intake.pin_identities,
                              clock=clock)
        verbs = RuntimeVerbs(
            audit_log=audit, job_store=job_store, table=table, jobs=jobs, prefix=prefix, undo_book=self.undo_book,
            policy=policy, confirmations=self.confirmations, undoing=UndoSource(undo_checks, self.pipeline, writer),
            pipeline=self.pipeline, replies=self.replies, audit=writer, refusals=refusing, answers=self.answers,
            identity_pins=pins, clock=clock,
            timers=timer_book, schedules=self.schedules,
        )
        self.intake = Intake(
            policy=policy, table=table, contexts=self.contexts, confirmations_store=confirmations, messenger=messenger,
            replies=self.replies, refusals=refusing, answers=self.answers, audit=writer, journal=command_journal,
            pipeline=self.pipeline,
            confirmations=self.confirmations, verbs=verbs, prefix=prefix, bot_user_id=bot_user_id, clock=clock,
            require_cross_signed_senders=require_cross_signed_senders, pin_identities=pin_identities, identities=guard,
            gate=gate,
            reaction_hooks=self.reaction_hooks,
        )
        self.recovery = Recovery(journal_store=journal, audit_log=audit, job_store=job_store, table=table, policy=policy,
                                 contexts=self.contexts, intake=self.intake, journal=command_journal,
                                 replies=self.replies, audit=writer, clock=clock)

        # Actions given --for end by themselves: a source of its own (bot/runtime/timers.py).
        self.timers = TimerSource(
            store=timers, book=self.undo_book, checks=undo_checks, pipeline=self.pipeline, policy=policy,
            contexts=self.contexts, replies=self.replies, audit=writer, journal=command_journal,
            admin_rooms=lambda: list(self.intake.admin_rooms), clock=clock,
        ) if timers is not None else None

    @property
    def admin_rooms(self) -> AdminRooms:
        return self.intake.admin_rooms

    # -- what the Matrix layer and the app call

    def journals(self, room_id: str, sender: str, body: str | None) -> bool:
        return self.intake.journals(room_id, sender, body)

    async def on_message(self, msg: IncomingMessage) -> None:
        await self.intake.on_message(msg)

    async def on_reaction(self, reaction: IncomingReaction) -> None:
        await self.intake.on_reaction(reaction)

    async def on_undecryptable(self, event: UndecryptableMessage) -> None:
        await self.intake.on_undecryptable(event)

    async def run_as(
        self, *, sender: str, room_id: str, reply_to: str, command: str, args: dict[str, Any],
        thread_root: str | None = None, quiet: bool = False,
    ) -> Outcome:
        return await self.intake.run_as(sender=sender, room_id=room_id, reply_to=reply_to, command=command, args=args,
                                        thread_root=thread_root, quiet=quiet)

    async def recover(self, fetch: Callable[[str, str], Awaitable[Any]]) -> int:
        return await self.recovery.recover(fetch)

    async def expire_confirmations(self) -> int:
        return await self.confirmations.expire()


def _undetected() -> MASDetection | None:
    return None
