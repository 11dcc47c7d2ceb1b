"""Every "who may" the bot asks, answered with a Decision and its reason.

Run a command, confirm one (with the two-person rule, `approval.two_person`: approve one, as a
second person), cancel one, take an action back, stop a job, keep a job going: the runtime asks here and nowhere compares
roles itself. The reason is for the room, without the leading "Refused: " and the final stop
(the caller says how it refuses); "needs the X role; you are a Y" is written once, in `_needs`.

These are pure answers from roles and invocations; the questions that need the homeserver (is
this account staff?) are bot/policy/rules.py's `invocation_problem` and `target_problem`.
"""

from __future__ import annotations


from bot.handler_api.invocation import Invocation
from bot.handler_api.spec import Command, Role
from bot.records import record


@record
class Decision:
    """Yes, or no with the reason (for the room)."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


YES = Decision(True)


def _needs(what: str, needed: Role, role: Role | None) -> Decision:
    if role is not None and role >= needed:
        return YES
    you = f"you are a {role.label}" if role is not None else "you have no role"
    return Decision(False, f"{what} needs the {needed.label} role; {you}")


def as_asked(inv: Invocation) -> str:
    """The command name with what raised it (`user media --delete`, `server bgupdates enable`)."""
    return " ".join([inv.name, *(name for name, _ in inv.command.escalations_given(dict(inv.args)))])


def may_run(role: Role | None, inv: Invocation) -> Decision:
    return _needs(as_asked(inv), inv.role_needed, role)


def may_run_verb(role: Role | None, command: Command) -> Decision:
    """One of the runtime's own verbs (help, confirm, audit, jobs…)."""
    return _needs(command.name, command.role, role)


def may_confirm(who: str, role: Role | None, inv: Invocation, *, two_person: bool = False) -> Decision:
    """Whoever confirms runs it: they need the role it needs. Under the two-person rule
    (`two_person`: its command is listed under `approval.two_person`), that is someone else than
    the requester: `may_approve`."""
    if two_person:
        return may_approve(who, role, inv)
    return _needs(f"confirming {as_asked(inv)}", inv.role_needed, role)


SECOND_PERSON = "a second person is needed"


def may_approve(approver: str, role: Role | None, inv: Invocation) -> Decision:
    """A second person's approval (two-person rule): someone else than the requester, who may run it."""
    if approver == inv.requester:
        return Decision(False, f"{SECOND_PERSON}: {inv.name} runs only when someone else whose role may run it "
                               "(approval.two_person in the config) confirms it; the prompt stays valid for them")
    return _needs(f"approving {as_asked(inv)}", inv.role_needed, role)


def may_cancel(who: str, role: Role | None, *, requested_by: str, inv: Invocation) -> Decision:
    """A pending confirmation: its requester, or anyone who may run it, drops it."""
    if who == requested_by or may_run(role, inv):
        return YES
    return Decision(False, "only the requester or someone who may run that command can cancel it")


def may_undo(role: Role | None, action: Invocation | None, *, entry: int, command: str) -> Decision:
    """An undo needs the role of the action it takes back (its inverse's own role is checked on
    its way, like any command's); an action this version cannot read back, the admin role."""
    needed = action.role_needed if action is not None else Role.ADMIN
    return _needs(f"undoing #{entry} ({command})", needed, role)


def may_see_job_result(role: Role | None, command: Command | None) -> Decision:
    """What a job found or did (the accounts a bulk job touched, what a deletion removed) is for the
    people who may run its command; a command this version does not know, admins."""
    if command is None:
        return _needs("seeing the result of a job of a command this version does not know", Role.ADMIN, role)
    return _needs(f"seeing what {command.name} found or did", command.role, role)


def may_stop_job(who: str, role: Role | None, *, started_by: str, job_id: int) -> Decision:
    if who == started_by or (role is not None and role >= Role.ADMIN):
        return YES
    return Decision(False, f"only {started_by}, who started job #{job_id}, or an admin can stop it")


def may_cancel_timer(who: str, role: Role | None, *, set_by: str, timer_id: int) -> Decision:
    """`timers cancel`: keeping an action that would end by itself is for whoever set it, or an admin."""
    if who == set_by or (role is not None and role >= Role.ADMIN):
        return YES
    return Decision(False, f"only {set_by}, who set timer #{timer_id}, or an admin can cancel it")


def may_change_schedule(who: str, role: Role | None, *, author: str, schedule_id: int) -> Decision:
    """`schedule remove|pause|resume`: its author, or an admin."""
    if who == author or (role is not None and role >= Role.ADMIN):
        return YES
    return Decision(False, f"only {author}, who scheduled #{schedule_id}, or an admin can change it")


# Who handles reports, and so can be given one.
REPORT_HANDLER = Role.MODERATOR


def may_be_assigned(user_id: str, role: Role | None) -> Decision:
    """A report is given to someone who handles reports (a moderator or an admin)."""
    if role is not None and role >= REPORT_HANDLER:
        return YES
    what = f"is a {role.label}" if role is not None else "has no role in this bot"
    return Decision(False, f"{user_id} {what}: only moderators and admins (access.moderators and access.admins in "
                           "the config) handle reports, so only they can be assigned one")


def may_go_on(requester: str, role: Role | None, inv: Invocation, *, what: str = "this job") -> Decision:
    """A job, before each step: its requester still has the role it needs (from the current config)."""
    needed = inv.role_needed
    if role is not None and role >= needed:
        return YES
    now = "no role any more" if role is None else f"only the {role.label} role"
    return Decision(False, f"{requester} has {now} in the bot's config, and {what} needs the {needed.label} role")
