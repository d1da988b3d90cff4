"""Checks of each feature of a survey layer, reported row by row.

Geometry checks run vectorised in shapely; overlap checks run in PostGIS, where a
temporary table with a GiST index joins the file against itself and against the
registered parcels in one statement each.
"""

from collections import defaultdict

import numpy as np
import shapely
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from importers.errors import Problem
from registry.pgcopy import copy_rows
from spatial.geometry import as_multipolygons

# A file laid over the wrong place can overlap everything; list this many
# overlaps above the tolerance at most (any one of them refuses its row).
MAX_REGISTERED_OVERLAPS = 20_000
POLYGONAL = {shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON}
TYPE_NAMES = {
    shapely.GeometryType.POINT: "Point",
    shapely.GeometryType.LINESTRING: "LineString",
    shapely.GeometryType.LINEARRING: "LinearRing",
    shapely.GeometryType.MULTIPOINT: "MultiPoint",
    shapely.GeometryType.MULTILINESTRING: "MultiLineString",
    shapely.GeometryType.GEOMETRYCOLLECTION: "GeometryCollection",
}


def geometry(
    rows: np.ndarray, codes: np.ndarray, geoms: np.ndarray, *, repair: bool
) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """Return (geometries as 2D MultiPolygons, ok mask, problems)."""
    problems: list[Problem] = []
    ok = np.ones(len(geoms), dtype=bool)
    missing = np.array([g is None for g in geoms], dtype=bool)
    for i in np.flatnonzero(missing):
        problems.append(
            Problem.of(
                _("The feature has no geometry."),
                row=int(rows[i]),
                code=codes[i],
                field="geometry",
            )
        )
    ok &= ~missing
    present = np.where(missing, shapely.Polygon(), geoms)
    empty = shapely.is_empty(present) & ~missing
    for i in np.flatnonzero(empty):
        problems.append(
            Problem.of(
                _("The geometry is empty."),
                row=int(rows[i]),
                code=codes[i],
                field="geometry",
            )
        )
    ok &= ~empty
    types = shapely.get_type_id(present)
    wrong = ok & ~np.isin(types, list(POLYGONAL))
    for i in np.flatnonzero(wrong):
        problems.append(
            Problem.of(
                _("The geometry is a %(type)s; parcels must be polygons."),
                row=int(rows[i]),
                code=codes[i],
                field="geometry",
                type=TYPE_NAMES.get(types[i], str(types[i])),
            )
        )
    ok &= ~wrong
    has_z = ok & shapely.has_z(present)
    if has_z.any():
        for i in np.flatnonzero(has_z)[:1]:
            problems.append(
                Problem.of(
                    _("Z (height) values are dropped: %(count)s feature(s) have them."),
                    row=int(rows[i]),
                    code=codes[i],
                    field="geometry",
                    severity="warning",
                    count=int(has_z.sum()),
                )
            )
        present = np.where(has_z, shapely.force_2d(present), present)
    valid = shapely.is_valid(present)
    for i in np.flatnonzero(ok & ~valid):
        reason = shapely.is_valid_reason(present[i])
        if repair:
            fixed = as_multipolygons([shapely.make_valid(present[i])])[0]
            before, after = float(shapely.area(present[i])), float(fixed.area)
            if fixed.is_empty or not fixed.is_valid:
                problems.append(
                    Problem.of(
                        _("Invalid geometry (%(reason)s) could not be repaired."),
                        row=int(rows[i]),
                        code=codes[i],
                        field="geometry",
                        reason=reason,
                    )
                )
                ok[i] = False
                continue
            present[i] = fixed
            problems.append(
                Problem.of(
                    _(
                        "Invalid geometry (%(reason)s) repaired; area %(before)s m² "
                        "→ %(after)s m²."
                    ),
                    row=int(rows[i]),
                    code=codes[i],
                    field="geometry",
                    severity="warning",
                    reason=reason,
                    before=f"{before:.2f}",
                    after=f"{after:.2f}",
                )
            )
        else:
            problems.append(
                Problem.of(
                    _("Invalid geometry: %(reason)s. Fix it, or import with repair."),
                    row=int(rows[i]),
                    code=codes[i],
                    field="geometry",
                    reason=reason,
                )
            )
            ok[i] = False
    multi = np.full(len(present), None, dtype=object)
    multi[ok] = as_multipolygons(present[ok])
    return multi, ok, problems


def duplicate_codes(
    rows: np.ndarray, codes: np.ndarray, field_name: str
) -> list[Problem]:
    """Report every row whose code already appeared on an earlier row."""
    first: dict[str, int] = {}
    problems = []
    for row, code in zip(rows, codes, strict=True):
        if not code:
            continue
        if code in first:
            problems.append(
                Problem.of(
                    _("The code %(code)s is already used by row %(first)s."),
                    row=int(row),
                    code=code,
                    field=field_name,
                    first=first[code],
                )
            )
        else:
            first[code] = int(row)
    return problems


def overlaps(
    rows: np.ndarray,
    codes: np.ndarray,
    geoms: np.ndarray,
    *,
    tolerance_m2: float,
) -> list[Problem]:
    """Report overlaps above the tolerance within the file and with the registry.

    Only interiors count (DE-9IM ``T********``): neighbours that share an edge
    touch, they do not overlap.
    """
    if len(geoms) == 0:
        return []
    problems = []
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    inner = shapely.relate_pattern(geoms[left], geoms[right], "T********")
    left, right = left[inner], right[inner]
    areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    for a, b, area in zip(left, right, areas, strict=True):
        if area <= tolerance_m2:
            continue
        for one, other in ((a, b), (b, a)):
            problems.append(
                Problem.of(
                    _("Overlaps %(other)s (row %(other_row)s) by %(area)s m²."),
                    row=int(rows[one]),
                    code=codes[one],
                    field="geometry",
                    other=codes[other],
                    other_row=int(rows[other]),
                    area=f"{area:.2f}",
                )
            )
    for row, code, other_code, area in _registered_overlaps(
        rows, codes, geoms, tolerance_m2
    ):
        if area > tolerance_m2:
            problems.append(
                Problem.of(
                    _("Overlaps registered parcel %(other)s by %(area)s m²."),
                    row=row,
                    code=code,
                    field="geometry",
                    other=other_code,
                    area=f"{area:.2f}",
                )
            )
    return problems


def _registered_overlaps(rows, codes, geoms, tolerance_m2: float) -> list[tuple]:
    """Return (row, code, registered code, area) for overlaps with the registry."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM registry_parcel "
            "WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4547))",
            [minx, miny, maxx, maxy],
        )
        if not cursor.fetchone()[0]:
            return []  # nothing registered anywhere near: the usual first import
    ewkb = shapely.to_wkb(shapely.set_srid(geoms, 4547), hex=True, include_srid=True)
    # ON COMMIT DROP: the staging table lives exactly as long as this check.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE check_stage (row integer, code text, "
            "geom geometry(MultiPolygon, 4547)) ON COMMIT DROP"
        )
        copy_rows(
            cursor,
            "check_stage",
            ("row", "code", "geom"),
            zip((int(r) for r in rows), codes, ewkb, strict=True),
        )
        cursor.execute(
            """
            SELECT * FROM (
                SELECT s.row, s.code, p.code,
                       ST_Area(ST_Intersection(s.geom, p.geom)) AS area
                FROM check_stage s JOIN registry_parcel p
                  ON p.geom && s.geom AND p.code <> s.code
                 AND ST_Relate(s.geom, p.geom, 'T********')
            ) found
            WHERE area > %s ORDER BY row LIMIT %s
            """,
            [tolerance_m2, MAX_REGISTERED_OVERLAPS],
        )
        found = cursor.fetchall()
        cursor.execute("DROP TABLE check_stage")
    return found


def declared_area(
    rows, codes, declared, geoms, ok, *, tolerance_pct: float, field_name: str
) -> list[Problem]:
    """Report rows whose declared area differs from the computed one too much."""
    problems = []
    computed = np.where(ok, shapely.area(np.where(ok, geoms, shapely.Polygon())), 0.0)
    for i in np.flatnonzero(ok):
        value = declared[i]
        if value is None or computed[i] <= 0:
            continue
        difference = abs(value - computed[i]) / computed[i] * 100
        if difference > tolerance_pct:
            problems.append(
                Problem.of(
                    _(
                        "Declared area %(declared)s m² differs from the surveyed "
                        "%(computed)s m² by %(pct)s%% (tolerance %(tolerance)s%%)."
                    ),
                    row=int(rows[i]),
                    code=codes[i],
                    field=field_name,
                    declared=f"{value:.2f}",
                    computed=f"{computed[i]:.2f}",
                    pct=f"{difference:.1f}",
                    tolerance=f"{tolerance_pct:g}",
                )
            )
    return problems


def rows_with_errors(problems: list[Problem]) -> set[int]:
    """Return the rows that have at least one error."""
    return {p.row for p in problems if p.severity == "error" and p.row is not None}


def summarise(problems: list[Problem]) -> list[dict]:
    """Count problems by English message template (first 60 characters)."""
    counts: dict[tuple, int] = defaultdict(int)
    for p in problems:
        counts[(p.severity, p.field, p.en.split(":")[0][:60])] += 1
    return [
        {"severity": s, "field": f, "message": m, "count": c}
        for (s, f, m), c in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
