"""Reading the dates and moments users type into filters (API, commands).

A date alone means the end of that day in Shanghai, so "as of 2025-06-30" includes
everything done on the 30th. Anything unreadable is a bilingual refusal.
"""

from datetime import date, datetime

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import get_current_timezone, make_aware
from django.utils.translation import gettext_lazy as _

from registry.errors import RegistryError


class UnreadableDate(RegistryError):
    """A filter's date or date-time could not be read."""


def parse_moment(
    text: str | None, *, name: str = "as_of", day_starts: bool = False
) -> datetime | None:
    """Return the aware moment ``text`` names (None for no text).

    A date alone is the end of that day, or its start with ``day_starts`` (the
    opening end of an interval).
    """
    if not text:
        return None
    day = _day_or_none(text) if len(text) == 10 else None
    try:
        moment = None if day else parse_datetime(text)
    except ValueError:  # well-formed but impossible, e.g. 2025-02-30T10:00
        moment = None
    if moment is None:
        if day is None:
            raise UnreadableDate(
                _("%(name)s is not a date or date-time: %(text)s"),
                name=name,
                text=text[:40],
            )
        moment = datetime(day.year, day.month, day.day)
        if not day_starts:
            moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
    if moment.tzinfo is None:
        moment = make_aware(moment, get_current_timezone())
    return moment


def parse_day(text: str | None, *, name: str) -> date | None:
    """Return the date ``text`` names (None for no text)."""
    if not text:
        return None
    day = _day_or_none(text)
    if day is None:
        raise UnreadableDate(
            _("%(name)s is not a date: %(text)s"), name=name, text=text[:40]
        )
    return day


def _day_or_none(text: str) -> date | None:
    try:
        return parse_date(text)
    except ValueError:  # well-formed but impossible, e.g. 2025-13-45
        return None
