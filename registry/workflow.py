"""The parcel workflow: its statuses, in order, and the one table of allowed moves.

Pure Python, no database: services consult it before they write, views and the admin
consult it to offer only the moves that exist. A parcel moves forward one stage at a
time, in the order the land-consolidation procedure prescribes; it moves back only
by an explicit *reopen*, which always needs a reason.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    """Workflow stages of a parcel, in procedural order."""

    SURVEYED = "surveyed", _("Surveyed and valued")
    DECLARED = "declared", _("Ownership declared")
    VERIFIED = "verified", _("Verified, compensation planned")
    SIGNED = "signed", _("Agreement signed")
    CLEARED = "cleared", _("Vacated and cleared")
    BANKED = "banked", _("Entered into the land bank")


class Move(models.TextChoices):
    """Kinds of status change recorded in the history."""

    CREATE = "create", _("Created")
    ADVANCE = "advance", _("Advance")
    REOPEN = "reopen", _("Reopen")


ORDER: tuple[Status, ...] = tuple(Status)

# Land counts as cleared (已清理) once vacated and handed over; banking keeps it so.
CLEARED_STATUSES: frozenset[Status] = frozenset({Status.CLEARED, Status.BANKED})

# TRANSITIONS[from][to] is the kind of move; a pair that is absent is not allowed.
# Forward: exactly the next stage. Back: any earlier stage, as a reopen.
TRANSITIONS: dict[Status, dict[Status, Move]] = {
    current: {
        **dict.fromkeys(ORDER[:index], Move.REOPEN),
        **({ORDER[index + 1]: Move.ADVANCE} if index + 1 < len(ORDER) else {}),
    }
    for index, current in enumerate(ORDER)
}


def move_between(current: str, target: str) -> Move | None:
    """Return the kind of move from ``current`` to ``target``, or None if refused."""
    return TRANSITIONS[Status(current)].get(Status(target))


def next_status(current: str) -> Status | None:
    """Return the stage after ``current``, or None at the end of the workflow."""
    index = ORDER.index(Status(current))
    return ORDER[index + 1] if index + 1 < len(ORDER) else None
