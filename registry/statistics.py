"""Progress statistics: the figures analysts report, now or as of any past date.

Everything is computed in SQL from two sources of truth: the parcels (their
current state) and the status history (their past). "As of" a moment means: a
parcel counts if it had been created by then, with the status of its last history
row up to then, and with the geometry it had then (a later re-survey's revision
holds the geometry it replaced). "Cleared" is ``registry.workflow.CLEARED_STATUSES``,
as everywhere else.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from registry.workflow import CLEARED_STATUSES, Status

DISTRICT_AREA_KM2 = 156.1  # official area of Guangming district
CLEARED = tuple(sorted(s.value for s in CLEARED_STATUSES))


@dataclass(frozen=True)
class Cell:
    """Parcels of one project, land class and status (project None: outside)."""

    project: str | None
    land_class: str
    status: str
    street: str
    parcels: int
    area_m2: float

    @property
    def cleared(self) -> bool:
        """Return whether this land counts as cleared."""
        return self.status in CLEARED


def area_cells(*, as_of: datetime | None = None) -> list[Cell]:
    """Return parcel counts and areas per project × land class × status × street."""
    if as_of is None:
        # Now: the database's running tally (registry.models.ParcelTally), a few
        # hundred rows instead of every parcel.
        sql = """
            SELECT pr.code, t.land_class, t.status, t.street,
                   sum(t.parcels)::bigint, sum(t.area_m2)::float8
            FROM registry_parceltally t
            LEFT JOIN registry_project pr ON pr.id = t.project_id
            GROUP BY 1, 2, 3, 4 HAVING sum(t.parcels) <> 0 ORDER BY 1, 2, 3, 4
        """
        params = {}
    else:
        sql = f"""
            WITH {_AS_OF}
            SELECT pr.code, a.land_class, a.status, p.street, count(*), sum(a.area_m2)
            FROM parcel_as_of a
            JOIN registry_parcel p ON p.id = a.parcel_id
            LEFT JOIN registry_project pr ON pr.id = p.project_id
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        """  # noqa: S608  (the CTE is a constant of this module)
        params = {"as_of": as_of}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [Cell(*row[:5], float(row[5] or 0.0)) for row in cursor.fetchall()]


def tally_compact() -> int:
    """Fold the tally's appended rows into one row per cell; return rows removed.

    Safe beside writers: the rows deleted are exactly those this statement saw,
    and their sums go back in the same statement; rows appended meanwhile by
    other transactions are untouched. Cells that sum to nothing disappear.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH folded AS (
                DELETE FROM registry_parceltally RETURNING *
            ), summed AS (
                INSERT INTO registry_parceltally
                    (project_id, land_class, status, street, parcels, area_m2)
                SELECT project_id, land_class, status, street, sum(parcels),
                       sum(area_m2)
                FROM folded GROUP BY 1, 2, 3, 4
                HAVING sum(parcels) <> 0 OR sum(area_m2) <> 0
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM folded) - (SELECT count(*) FROM summed)
            """
        )
        return cursor.fetchone()[0]


# Each parcel's first revision after %(as_of)s, if any: it holds the geometry and
# land class the parcel had at that moment (shared with registry.exports).
REPLACED_LATER = """
replaced_later AS (
    SELECT DISTINCT ON (r.parcel_id) r.parcel_id, r.old_geom, r.old_land_class
    FROM registry_parcelrevision r
    WHERE r.at > %(as_of)s
    ORDER BY r.parcel_id, r.at, r.id
)"""

# The state of every parcel at %(as_of)s, from the history and the revisions.
_AS_OF = f"""
status_as_of AS (
    SELECT DISTINCT ON (h.parcel_id) h.parcel_id, h.to_status AS status
    FROM registry_parcelstatuschange h
    WHERE h.at <= %(as_of)s
    ORDER BY h.parcel_id, h.at DESC, h.id DESC
),
{REPLACED_LATER},
parcel_as_of AS (
    SELECT s.parcel_id, s.status,
           COALESCE(NULLIF(r.old_land_class, ''), p.land_class) AS land_class,
           COALESCE(ST_Area(r.old_geom), p.area_m2) AS area_m2
    FROM status_as_of s
    JOIN registry_parcel p ON p.id = s.parcel_id
    LEFT JOIN replaced_later r ON r.parcel_id = s.parcel_id
)
"""  # noqa: S608  (constants of this module)


@dataclass(frozen=True)
class Summary:
    """Totals of a set of cells."""

    parcels: int
    area_m2: float
    cleared_m2: float
    banked_m2: float

    @property
    def uncleared_m2(self) -> float:
        """Return the area not yet cleared."""
        return self.area_m2 - self.cleared_m2


def summarise(cells: list[Cell], **match) -> Summary:
    """Total the cells whose attributes equal ``match`` (e.g. ``project="L6"``)."""
    chosen = [c for c in cells if all(getattr(c, k) == v for k, v in match.items())]
    return Summary(
        parcels=sum(c.parcels for c in chosen),
        area_m2=sum(c.area_m2 for c in chosen),
        cleared_m2=sum(c.area_m2 for c in chosen if c.cleared),
        banked_m2=sum(c.area_m2 for c in chosen if c.status == Status.BANKED),
    )


def banked_over_time(*, period: str = "month", until: datetime | None = None) -> list:
    """Return (period start, area banked, area taken out, cumulative) rows.

    From the history: a banking row adds the parcel's area in the period of its
    banking date (入库日期), a reopen out of the bank subtracts it in the period
    it happened; ``period`` is "month", "quarter" or "year" (Shanghai time).
    """
    if period not in {"month", "quarter", "year"}:
        raise ValueError(f"unknown period {period!r}")
    until = until or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT date_trunc(
                       %(period)s,
                       COALESCE(h.banked_on, (h.at AT TIME ZONE 'Asia/Shanghai')::date)
                   )::date,
                   sum(p.area_m2) FILTER (WHERE h.to_status = 'banked'),
                   sum(p.area_m2) FILTER (WHERE h.from_status = 'banked')
            FROM registry_parcelstatuschange h
            JOIN registry_parcel p ON p.id = h.parcel_id
            WHERE (h.to_status = 'banked' OR h.from_status = 'banked')
              AND h.at <= %(until)s
            GROUP BY 1 ORDER BY 1
            """,
            {"period": period, "until": until},
        )
        rows, total = [], 0.0
        for start, banked, unbanked in cursor.fetchall():
            banked, unbanked = float(banked or 0), float(unbanked or 0)
            total += banked - unbanked
            rows.append((start, banked, unbanked, total))
    return rows
