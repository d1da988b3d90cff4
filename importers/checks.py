"""Checks of each feature of a survey layer, reported row by row.

Geometry checks run vectorised in shapely, a chunk of rows at a time; the checks
between rows (duplicate codes, overlaps) run in PostGIS over the staging table
(``importers.staging``), whose GiST index joins the file against itself and
against the registered parcels in one statement each.
"""

from collections import defaultdict

import numpy as np
import shapely
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from importers.errors import Problem
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
    ok &= _within_limits(rows, codes, present, ok, problems)
    # Rows refused so far are not looked at again: a 100,000-ring polygon must
    # not reach the validity check.
    present = np.where(ok, present, shapely.Polygon())
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


def _within_limits(rows, codes, geoms, ok, problems: list[Problem]) -> np.ndarray:
    """Return which rows are within the rings and vertices a feature may have."""
    limits = settings.IMPORT_LIMITS
    max_rings, max_vertices = limits["feature_rings"], limits["feature_vertices"]
    within = np.ones(len(geoms), dtype=bool)
    candidates = np.flatnonzero(ok)
    if not len(candidates):
        return within
    vertices = shapely.get_num_coordinates(geoms[candidates])
    rings = _ring_counts(geoms[candidates])
    for position in np.flatnonzero((rings > max_rings) | (vertices > max_vertices)):
        i = candidates[position]
        if rings[position] > max_rings:
            message = _(
                "The geometry has %(count)s rings; at most %(limit)s are accepted "
                "in one feature."
            )
            count, limit = rings[position], max_rings
        else:
            message = _(
                "The geometry has %(count)s vertices; at most %(limit)s are "
                "accepted in one feature."
            )
            count, limit = vertices[position], max_vertices
        problems.append(
            Problem.of(
                message,
                row=int(rows[i]),
                code=codes[i],
                field="geometry",
                count=f"{int(count):,}",
                limit=f"{limit:,}",
            )
        )
        within[i] = False
    return within


def _ring_counts(geoms: np.ndarray) -> np.ndarray:
    """Return the rings (exterior and holes) of each geometry's polygons.

    Counted, not copied out (``get_rings`` copied every ring of every feature:
    83 ms against 4 ms per 20,000 polygons): a polygon's are its holes and its
    shell, a MultiPolygon's or a collection's those of its polygon parts.
    """
    polygon = shapely.GeometryType.POLYGON
    rings = np.zeros(len(geoms), dtype=np.int64)
    plain = shapely.get_type_id(geoms) == polygon
    rings[plain] = shapely.get_num_interior_rings(geoms[plain]) + 1
    others = np.flatnonzero(~plain)
    if len(others):
        parts, part_of = shapely.get_parts(geoms[others], return_index=True)
        polygons = shapely.get_type_id(parts) == polygon
        rings[others] = np.bincount(
            part_of[polygons],
            weights=shapely.get_num_interior_rings(parts[polygons]) + 1,
            minlength=len(others),
        )
    return rings


def duplicate_codes(cursor, field_name: str) -> list[Problem]:
    """Report every staged row whose code already appeared on an earlier row."""
    cursor.execute(
        """
        SELECT row, code, first FROM (
            SELECT row, code, min(row) OVER (PARTITION BY code) AS first
            FROM import_stage WHERE code <> ''
        ) coded
        WHERE row > first ORDER BY row
        """
    )
    return [
        Problem.of(
            _("The code %(code)s is already used by row %(first)s."),
            row=row,
            code=code,
            field=field_name,
            first=first,
        )
        for row, code, first in cursor.fetchall()
    ]


def overlaps(cursor, *, tolerance_m2: float) -> list[Problem]:
    """Report overlaps above the tolerance between the staged rows' geometries.

    Only interiors count (DE-9IM ``T********``): neighbours that share an edge
    touch, they do not overlap. Two boxes overlapping by no more than the
    tolerance cannot hold geometries that overlap by more, so most neighbours
    are let go before any geometry is compared.
    """
    cursor.execute(
        """
        SELECT * FROM (
            SELECT a.row, a.code, b.row, b.code,
                   ST_Area(ST_Intersection(a.geom, b.geom)) AS area
            FROM import_stage a JOIN import_stage b
              ON a.geom && b.geom AND a.row < b.row
            WHERE a.ok AND b.ok
              AND (least(ST_XMax(a.geom), ST_XMax(b.geom))
                   - greatest(ST_XMin(a.geom), ST_XMin(b.geom)))
                * (least(ST_YMax(a.geom), ST_YMax(b.geom))
                   - greatest(ST_YMin(a.geom), ST_YMin(b.geom))) > %(tolerance)s
              AND ST_Relate(a.geom, b.geom, 'T********')
        ) found
        WHERE area > %(tolerance)s ORDER BY 1, 3
        """,
        {"tolerance": tolerance_m2},
    )
    problems = []
    for row, code, other_row, other_code, area in cursor.fetchall():
        for mine, my_code, theirs, their_code in (
            (row, code, other_row, other_code),
            (other_row, other_code, row, code),
        ):
            problems.append(
                Problem.of(
                    _("Overlaps %(other)s (row %(other_row)s) by %(area)s m²."),
                    row=mine,
                    code=my_code,
                    field="geometry",
                    other=their_code,
                    other_row=theirs,
                    area=f"{area:.2f}",
                )
            )
    return problems


def registered_overlaps(cursor, *, tolerance_m2: float, bounds) -> list[Problem]:
    """Report staged rows overlapping registered parcels of other codes."""
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM registry_parcel "
        "WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4547))",
        list(bounds),
    )
    if not cursor.fetchone()[0]:
        return []  # nothing registered anywhere near: the usual first import
    cursor.execute(
        """
        SELECT * FROM (
            SELECT s.row, s.code, p.code,
                   ST_Area(ST_Intersection(s.geom, p.geom)) AS area
            FROM import_stage s JOIN registry_parcel p
              ON p.geom && s.geom AND p.code <> s.code
             AND ST_Relate(s.geom, p.geom, 'T********')
            WHERE s.ok
        ) found
        WHERE area > %s ORDER BY row LIMIT %s
        """,
        [tolerance_m2, MAX_REGISTERED_OVERLAPS],
    )
    return [
        Problem.of(
            _("Overlaps registered parcel %(other)s by %(area)s m²."),
            row=row,
            code=code,
            field="geometry",
            other=other_code,
            area=f"{area:.2f}",
        )
        for row, code, other_code, area in cursor.fetchall()
    ]


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


# Staged rows whose code is registered, with the registering project.
_ELSEWHERE = {
    "parcels": """
        SELECT s.row, s.code, pr.code FROM import_stage s
        JOIN registry_parcel held ON held.code = s.code
        LEFT JOIN registry_project pr ON pr.id = held.project_id
    """,
    "buildings": """
        SELECT s.row, s.code, pr.code FROM import_stage s
        JOIN registry_building b ON b.code = s.code
        JOIN registry_parcel held ON held.id = b.parcel_id
        LEFT JOIN registry_project pr ON pr.id = held.project_id
    """,
}


def registered_elsewhere(cursor, *, layer: str, project_id: int, field_name: str):
    """Report staged rows whose code another project already holds."""
    cursor.execute(
        _ELSEWHERE[layer] + " WHERE held.project_id IS DISTINCT FROM %s ORDER BY s.row",
        [project_id],
    )
    return [
        Problem.of(
            _("The code is already registered in project %(other)s."),
            row=row,
            code=code,
            field=field_name,
            other=other or "—",
        )
        for row, code, other in cursor.fetchall()
    ]


def settled_changes(cursor, *, project_id: int, statuses, labels, field_name: str):
    """Report staged rows that would change a parcel in one of ``statuses``.

    Delivering such a parcel again unchanged (the same shape, whatever the order
    of its vertices) is fine.
    """
    cursor.execute(
        """
        SELECT s.row, s.code, p.status FROM import_stage s
        JOIN registry_parcel p
          ON p.code = s.code AND p.project_id = %s AND p.status = ANY(%s)
        WHERE NOT (s.ok AND (s.geom = p.geom OR ST_Equals(s.geom, p.geom)))
        ORDER BY s.row
        """,
        [project_id, list(statuses)],
    )
    return [
        Problem.of(
            _(
                "Parcel %(code)s is already “%(status)s”; only a registry "
                "administrator may re-survey it."
            ),
            row=row,
            code=code,
            field=field_name,
            status=labels[status],
        )
        for row, code, status in cursor.fetchall()
    ]


def unknown_parcels(cursor, *, project_id: int, project_code: str, field_name: str):
    """Report staged buildings whose parcel is not registered in the project."""
    cursor.execute(
        """
        SELECT s.row, s.code, s.parcel_code FROM import_stage s
        WHERE NOT EXISTS (SELECT 1 FROM registry_parcel p
                          WHERE p.code = s.parcel_code AND p.project_id = %s)
        ORDER BY s.row
        """,
        [project_id],
    )
    return [
        Problem.of(
            _("Parcel %(parcel)s is not registered in project %(project)s."),
            row=row,
            code=code,
            field=field_name,
            parcel=parcel_code or "—",
            project=project_code,
        )
        for row, code, parcel_code in cursor.fetchall()
    ]
