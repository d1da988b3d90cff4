"""Applying survey results to the registry in bulk, and taking them back.

An import writes thousands of parcels at once, so this is set-based SQL over a
temporary table filled with ``COPY``, not a loop of ``save()``: new codes become
parcels in ``surveyed`` with their creation in the status history; known codes
whose geometry or attributes changed are updated, the previous values kept as a
``ParcelRevision``; identical rows are left alone, so importing the same file
twice changes nothing. Status is never touched here. All of it runs in the
caller's transaction.

Undo reverses one import while nothing later has touched its parcels: parcels
it created are removed (with their creation records, the one sanctioned deletion
of history, see migration 0002), parcels it re-surveyed get their previous
geometry back, and that restoration is itself recorded as a revision.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from registry import access, changes
from registry.errors import PermissionRefused, TransitionRefused
from registry.models import Project
from registry.pgcopy import copy_rows

# What one import batch touched: the old and new geometry of the parcels it
# re-surveyed, and the parcels it created.
_BATCH_PLACES = """
    SELECT r.old_geom AS g FROM registry_parcelrevision r
     WHERE r.import_batch_id = %(batch)s AND r.kind = 'updated'
    UNION ALL
    SELECT p.geom FROM registry_parcel p JOIN registry_parcelrevision r
        ON r.parcel_id = p.id
     WHERE r.import_batch_id = %(batch)s AND r.kind = 'updated'
    UNION ALL
    SELECT p.geom FROM registry_parcel p JOIN registry_parcelstatuschange h
        ON h.parcel_id = p.id
     WHERE h.move = 'create' AND h.evidence_ref = 'import:' || %(batch)s
"""

# The same, just after the import: the parcels it created or re-surveyed are those
# of the project it stamped with its time (an index finds them; the history
# holds no index on its evidence).
_APPLIED_PLACES = """
    SELECT r.old_geom AS g FROM registry_parcelrevision r
     WHERE r.import_batch_id = %(batch)s AND r.kind = 'updated'
    UNION ALL
    SELECT p.geom FROM registry_parcel p
     WHERE p.updated_at = %(at)s AND p.project_id = %(project)s
"""


@dataclass
class SurveyedParcels:
    """Parcels as a survey gives them, column-wise, geometry as EPSG:4547 EWKB hex."""

    codes: Sequence[str]
    land_classes: Sequence[str]
    declared_areas: Sequence[float | None]
    ewkb: Sequence[str]


@dataclass(frozen=True)
class Staged:
    """Rows already staged in this transaction, e.g. by the importer's checks.

    ``relation`` is the caller's constant SQL (a table name or a parenthesised
    SELECT) giving the columns of ``SurveyedParcels`` (code, land_class,
    declared, geom) or ``SurveyedBuildings`` (code, parcel_code, floors,
    floor_area, legality, owner_group, footprint), one row per code; ``count``
    is how many rows it holds.
    """

    relation: str
    count: int


@dataclass(frozen=True)
class Applied:
    """How many parcels an import created, updated and left unchanged."""

    created: int
    updated: int
    unchanged: int


def survey_apply(
    *,
    project: Project,
    parcels: SurveyedParcels | Staged,
    actor: AbstractBaseUser,
    import_batch_id: int,
    at: datetime,
) -> Applied:
    """Create or re-survey ``parcels`` in ``project``; return the counts."""
    if not access.can_import(actor, project):
        raise PermissionRefused(
            _("You may not import survey data into project %(project)s."),
            project=project.code,
        )
    with transaction.atomic(), connection.cursor() as cursor:
        if isinstance(parcels, Staged):
            stage, count = parcels.relation, parcels.count
        else:
            _stage(cursor, parcels)
            stage, count = "survey_stage", len(parcels.codes)
        cursor.execute(
            _on(
                stage,
                """
            SELECT s.code, pr.code FROM survey_stage s
            JOIN registry_parcel p ON p.code = s.code
            LEFT JOIN registry_project pr ON pr.id = p.project_id
            WHERE p.project_id IS DISTINCT FROM %s ORDER BY s.code LIMIT 10
            """,
            ),
            [project.pk],
        )
        elsewhere = cursor.fetchall()
        if elsewhere:
            raise TransitionRefused(
                _("Parcel codes already registered in another project: %(codes)s."),
                codes=", ".join(
                    f"{code} ({other or '—'})" for code, other in elsewhere
                ),
            )
        params = {
            "batch": import_batch_id,
            "actor": actor.pk,
            "at": at,
            "project": project.pk,
        }
        cursor.execute(
            _on(
                stage,
                """
            WITH changed AS (
                SELECT p.id, p.geom, p.land_class, p.declared_area_m2
                FROM registry_parcel p JOIN survey_stage s ON s.code = p.code
                -- The same shape with its vertices in another order (as
                -- imports stored them while GEOS rebuilt every rounded
                -- ring) is no change.
                WHERE NOT ((p.geom = s.geom OR ST_Equals(p.geom, s.geom))
                           AND p.land_class = s.land_class
                           AND p.declared_area_m2 IS NOT DISTINCT FROM s.declared)
            )
            INSERT INTO registry_parcelrevision
                (parcel_id, kind, import_batch_id, old_geom, old_land_class,
                 old_declared_area_m2, actor_id, at)
            SELECT id, 'updated', %(batch)s, geom, land_class, declared_area_m2,
                   %(actor)s, %(at)s
            FROM changed
            """,
            ),
            params,
        )
        updated = cursor.rowcount
        cursor.execute(
            _on(
                stage,
                """
            UPDATE registry_parcel p
               SET geom = s.geom, land_class = s.land_class,
                   declared_area_m2 = s.declared, updated_at = %(at)s
              FROM survey_stage s, registry_parcelrevision r
             WHERE s.code = p.code AND r.parcel_id = p.id
               AND r.import_batch_id = %(batch)s AND r.kind = 'updated'
            """,
            ),
            params,
        )
        cursor.execute(
            _on(
                stage,
                """
            WITH created AS (
                INSERT INTO registry_parcel
                    (code, project_id, land_class, status, street, geom,
                     declared_area_m2, banked_on, bank_ref, synthetic,
                     created_at, updated_at)
                SELECT s.code, %(project)s, s.land_class, 'surveyed',
                       (SELECT street FROM registry_project WHERE id = %(project)s),
                       s.geom, s.declared, NULL, '', false, %(at)s, %(at)s
                FROM survey_stage s
                WHERE NOT EXISTS (SELECT 1 FROM registry_parcel p WHERE p.code = s.code)
                RETURNING id
            )
            -- The creation row names the batch: that is how undo finds them.
            INSERT INTO registry_parcelstatuschange
                (parcel_id, move, from_status, to_status, actor_id, at, reason,
                 evidence_ref, banked_on, bank_ref)
            SELECT id, 'create', '', 'surveyed', %(actor)s, %(at)s, '',
                   'import:' || %(batch)s, NULL, ''
            FROM created
            """,
            ),
            params,
        )
        created = cursor.rowcount
        if stage == "survey_stage":
            cursor.execute("DROP TABLE survey_stage")
        changes.announce("parcels", _APPLIED_PLACES, params)
    return Applied(created, updated, count - created - updated)


def survey_undo(
    *, import_batch_id: int, actor: AbstractBaseUser, at: datetime
) -> Applied:
    """Reverse one import; refuse if anything later touched its parcels."""
    if not access.is_registry_admin(actor):
        raise PermissionRefused(_("Only registry administrators may undo an import."))
    params = {"batch": import_batch_id, "actor": actor.pk, "at": at}
    with transaction.atomic(), connection.cursor() as cursor:
        # What the batch did: parcels it created (their creation row names the
        # batch) and parcels it re-surveyed (a revision names it), with when.
        cursor.execute(
            """
            CREATE TEMP TABLE undo_affected ON COMMIT DROP AS
            SELECT parcel_id, 'updated' AS kind, at FROM registry_parcelrevision
             WHERE import_batch_id = %(batch)s AND kind = 'updated'
            UNION ALL
            SELECT parcel_id, 'created', at FROM registry_parcelstatuschange
             WHERE move = 'create' AND evidence_ref = 'import:' || %(batch)s
            """,
            params,
        )
        cursor.execute(
            "SELECT p.id FROM registry_parcel p JOIN undo_affected a "
            "ON a.parcel_id = p.id ORDER BY p.id FOR UPDATE OF p"
        )
        cursor.execute(
            """
            SELECT p.code FROM registry_parcel p JOIN undo_affected a
              ON a.parcel_id = p.id
            WHERE p.updated_at > a.at
               OR EXISTS (SELECT 1 FROM registry_parcelstatuschange h
                          WHERE h.parcel_id = p.id AND h.at > a.at)
               OR EXISTS (SELECT 1 FROM registry_parcelrevision later
                          WHERE later.parcel_id = p.id AND later.at > a.at)
               OR (a.kind = 'created' AND EXISTS (
                      SELECT 1 FROM registry_building b WHERE b.parcel_id = p.id))
            ORDER BY p.code LIMIT 20
            """
        )
        touched = [row[0] for row in cursor.fetchall()]
        if touched:
            raise TransitionRefused(
                _(
                    "The import cannot be undone: these parcels changed after it "
                    "(%(codes)s)."
                ),
                codes=", ".join(touched),
            )
        # Read before anything moves: after the undo the created parcels are gone.
        changes.announce("parcels", _BATCH_PLACES, params)
        # The undo is a revision too, keeping the geometry it replaces, so that
        # "as of" a moment between the import and its undo stays answerable.
        cursor.execute(
            """
            INSERT INTO registry_parcelrevision
                (parcel_id, kind, import_batch_id, old_geom, old_land_class,
                 old_declared_area_m2, actor_id, at)
            SELECT p.id, 'undone', %(batch)s, p.geom, p.land_class,
                   p.declared_area_m2, %(actor)s, %(at)s
            FROM registry_parcel p JOIN registry_parcelrevision r
              ON r.parcel_id = p.id
            WHERE r.import_batch_id = %(batch)s AND r.kind = 'updated'
            """,
            params,
        )
        cursor.execute(
            """
            UPDATE registry_parcel p
               SET geom = r.old_geom, land_class = r.old_land_class,
                   declared_area_m2 = r.old_declared_area_m2, updated_at = %(at)s
              FROM registry_parcelrevision r
             WHERE r.parcel_id = p.id AND r.import_batch_id = %(batch)s
               AND r.kind = 'updated'
            """,
            params,
        )
        restored = cursor.rowcount
        cursor.execute("SET LOCAL registry.allow_history_delete = 'on'")
        cursor.execute(
            "DELETE FROM registry_parcelstatuschange WHERE parcel_id IN "
            "(SELECT parcel_id FROM undo_affected WHERE kind = 'created')"
        )
        cursor.execute(
            "DELETE FROM registry_parcel WHERE id IN "
            "(SELECT parcel_id FROM undo_affected WHERE kind = 'created')"
        )
        removed = cursor.rowcount
        cursor.execute("DROP TABLE undo_affected")
        cursor.execute("SET LOCAL registry.allow_history_delete = 'off'")
    return Applied(removed, restored, 0)


def _on(stage: str, sql: str) -> str:
    """Return ``sql`` reading its rows from ``stage`` (a constant, see Staged)."""
    return sql.replace("survey_stage", stage).replace("building_stage", stage)


def _stage(cursor, parcels: SurveyedParcels) -> None:
    cursor.execute(
        """
        CREATE TEMP TABLE survey_stage (
            code text PRIMARY KEY, land_class text, declared double precision,
            geom geometry(MultiPolygon, 4547)
        ) ON COMMIT DROP
        """
    )
    copy_rows(
        cursor,
        "survey_stage",
        ("code", "land_class", "declared", "geom"),
        zip(
            parcels.codes,
            parcels.land_classes,
            parcels.declared_areas,
            parcels.ewkb,
            strict=True,
        ),
    )


@dataclass
class SurveyedBuildings:
    """Buildings as a survey gives them, column-wise (footprints as EWKB hex)."""

    codes: Sequence[str]
    parcel_codes: Sequence[str]
    floors: Sequence[int]
    floor_areas: Sequence[float]
    legalities: Sequence[str]
    owner_groups: Sequence[str]
    ewkb: Sequence[str]


def buildings_apply(
    *,
    project: Project,
    buildings: SurveyedBuildings | Staged,
    actor: AbstractBaseUser,
    at: datetime,
) -> Applied:
    """Create or re-survey buildings on parcels of ``project``; return the counts.

    New buildings start unsigned; the status of known ones is never changed here.
    """
    if not access.can_import(actor, project):
        raise PermissionRefused(
            _("You may not import survey data into project %(project)s."),
            project=project.code,
        )
    with transaction.atomic(), connection.cursor() as cursor:
        if isinstance(buildings, Staged):
            stage, count = buildings.relation, buildings.count
        else:
            _stage_buildings(cursor, buildings)
            stage, count = "building_stage", len(buildings.codes)
        cursor.execute(
            _on(
                stage,
                """
            SELECT s.code, s.parcel_code FROM building_stage s
            LEFT JOIN registry_parcel p
              ON p.code = s.parcel_code AND p.project_id = %s
            WHERE p.id IS NULL ORDER BY s.code LIMIT 10
            """,
            ),
            [project.pk],
        )
        orphans = cursor.fetchall()
        if orphans:
            raise TransitionRefused(
                _("Buildings on parcels not registered in %(project)s: %(codes)s."),
                project=project.code,
                codes=", ".join(f"{b} → {p}" for b, p in orphans),
            )
        # Where the buildings about to be re-surveyed stand now (their old place).
        changes.announce(
            "buildings",
            _on(
                stage,
                "SELECT b.footprint AS g FROM registry_building b"
                " JOIN building_stage s ON s.code = b.code"
                " WHERE NOT (b.footprint = s.footprint AND b.floors = s.floors"
                " AND b.legality = s.legality)",
            ),
        )
        cursor.execute(
            _on(
                stage,
                """
            UPDATE registry_building b
               SET parcel_id = p.id, footprint = s.footprint, floors = s.floors,
                   floor_area_m2 = s.floor_area, legality = s.legality,
                   owner_group = s.owner_group, updated_at = %(at)s
              FROM building_stage s JOIN registry_parcel p ON p.code = s.parcel_code
             WHERE b.code = s.code
               -- Only this project's buildings: a code known elsewhere is
               -- refused by the check, never taken over.
               AND b.parcel_id IN (SELECT id FROM registry_parcel
                                   WHERE project_id = %(project)s)
               AND NOT (b.parcel_id = p.id AND b.footprint = s.footprint
                        AND b.floors = s.floors AND b.floor_area_m2 = s.floor_area
                        AND b.legality = s.legality AND b.owner_group = s.owner_group)
            """,
            ),
            {"at": at, "project": project.pk},
        )
        updated = cursor.rowcount
        cursor.execute(
            _on(
                stage,
                """
            INSERT INTO registry_building
                (code, parcel_id, footprint, floors, floor_area_m2, legality,
                 owner_group, status, synthetic, updated_at)
            SELECT s.code, p.id, s.footprint, s.floors, s.floor_area, s.legality,
                   s.owner_group, 'unsigned', false, %(at)s
            FROM building_stage s JOIN registry_parcel p ON p.code = s.parcel_code
            WHERE NOT EXISTS (SELECT 1 FROM registry_building b WHERE b.code = s.code)
            """,
            ),
            {"at": at},
        )
        created = cursor.rowcount
        if created or updated:
            # Their new place, and the new ones'.
            changes.announce(
                "buildings",
                "SELECT footprint AS g FROM registry_building WHERE updated_at = %s",
                [at],
            )
        if stage == "building_stage":
            cursor.execute("DROP TABLE building_stage")
    return Applied(created, updated, count - created - updated)


def _stage_buildings(cursor, buildings: SurveyedBuildings) -> None:
    cursor.execute(
        "CREATE TEMP TABLE building_stage (code text PRIMARY KEY, "
        "parcel_code text, floors integer, floor_area double precision, "
        "legality text, owner_group text, "
        "footprint geometry(MultiPolygon, 4547)) ON COMMIT DROP"
    )
    copy_rows(
        cursor,
        "building_stage",
        ("code", "parcel_code", "floors", "floor_area", "legality",
         "owner_group", "footprint"),
        zip(
            buildings.codes,
            buildings.parcel_codes,
            (int(f) for f in buildings.floors),
            (float(a) for a in buildings.floor_areas),
            buildings.legalities,
            buildings.owner_groups,
            buildings.ewkb,
            strict=True,
        ),
    )  # fmt: skip
