"""The pipeline's step for what is destructive: show exactly what will run, and store the
invocation behind a confirmation code (or, with `--dry-run`, stop at the prompt). Deciding on it
later is bot/runtime/confirmations.py's."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.handler_api.invocation import Invocation
from bot.runtime.answers import Answers
from bot.runtime.confirm import code_for, new_code, prompt_minimal, prompt_view
from bot.runtime.options import RunOptions, handler_kwargs
from bot.runtime.outcome import Broken, DryRun, Failed, Outcome, Prompted
from bot.runtime.replies import origin

if TYPE_CHECKING:
    from bot.handler_api.context import Context
    from bot.runtime.auditing import AuditWriter
    from bot.runtime.replies import Replies
    from bot.runtime.held_secrets import HeldSecrets
    from bot.state.confirmations import ConfirmationStore
    from bot.state.meta import MetaStore

CODE_KEY = "confirm.key"  # meta: the secret that prompt codes are derived with (bot/runtime/confirm.py)


class Prompts:
    def __init__(self, *, confirmations: ConfirmationStore, meta: MetaStore, held_secrets: HeldSecrets, replies: Replies, audit: AuditWriter, answers: Answers, prefix: str,
                 confirm_timeout: float, second_person: Callable[[Invocation], bool] = lambda inv: False) -> None:
        self.second_person = second_person  # the policy's answer: the two-person rule applies to it
        self.store = confirmations
        self.meta = meta
        self.held_secrets = held_secrets  # typed passwords waiting for a confirmation: never in the database
        self.replies = replies
        self.audit = audit
        self.answers = answers
        self.prefix = prefix
        self.confirm_timeout = confirm_timeout
        self._code_key: bytes | None = None

    async def prompt(self, ctx: Context, inv: Invocation, options: RunOptions, *, extra: Any = None) -> Outcome:
        preview: Any = None
        if inv.command.preview_handler is not None:
            try:
                preview = await inv.command.preview_handler(ctx, **handler_kwargs(inv, options.page))
            except Exception as exc:
                view, outcome = self.answers.of(exc, inv.command, stage="preview")
                if isinstance(outcome, Failed):
                    await self.audit.invocation(ctx, inv, outcome.result, "preview")
                elif isinstance(outcome, Broken):  # a preview's bug: answered, audited, nothing waits
                    await self.audit.invocation(ctx, inv, outcome.result, f"preview: {type(exc).__name__}")
                await self.replies.reply(ctx, view)
                return outcome
        if options.dry_run:
            await self.audit.invocation(ctx, inv, DryRun().result)
            await self.replies.reply(ctx, prompt_view(inv, preview, code=None, prefix=self.prefix,
                                                      timeout_s=self.confirm_timeout))
            return DryRun()
        code = await self._code()
        known = await self.store.get_confirmation(code)
        if known is not None and (known.command_event_id != ctx.event_id or known.room_id != ctx.room_id):
            code, known = new_code(), None  # another prompt's code (a collision): a fresh one
        # However much the preview must shrink to fit one event, the code stays in the prompt.
        prompt_id = await self.replies.reply(
            ctx, prompt_view(inv, preview, code=code, prefix=self.prefix, timeout_s=self.confirm_timeout,
                             second_person=self.second_person(inv), extra=extra),
            minimal=prompt_minimal(inv, code=code, prefix=self.prefix))
        if not prompt_id:
            # Nobody saw the prompt: nothing may wait for a confirmation (a bare `confirm` would run it unseen).
            await self.audit.invocation(ctx, inv, Failed().result,
                                        "the confirmation prompt could not be sent; nothing waits for confirmation")
            await self.replies.reply(ctx, self.answers.prompt_unsent(inv.command))
            return Failed()
        if known is not None:
            return Prompted(code)  # stored before a restart: the prompt above was that one again (same event)
        await self.store.add_confirmation(
            code=code, command=inv.name, invocation_json=self.held_secrets.stored_form(code, inv), sender=ctx.requester,
            room_id=ctx.room_id,
            command_event_id=ctx.event_id, thread_root=ctx.thread_root, summary=inv.summary(),
            ttl_ms=int(self.confirm_timeout * 1000),
        )
        await self.store.set_confirmation_prompt(code, prompt_id)
        await self.audit.invocation(ctx, inv, Prompted(code).result, f"confirmation {code}", confirmation_code=code)
        return Prompted(code)

    async def _code(self) -> str:
        """A prompt's code: derived from the event it answers (the same prompt after a restart),
        with a secret of the bot's own; random when no event is being answered."""
        event = origin()
        if event is None:
            return new_code()
        if self._code_key is None:
            stored = await self.meta.get_meta(CODE_KEY)
            if stored is None:
                stored = secrets.token_hex(32)
                await self.meta.set_meta(CODE_KEY, stored)
            self._code_key = bytes.fromhex(stored)
        return code_for(self._code_key, event)
