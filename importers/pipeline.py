"""The one import core that the web page, the API and the command all call.

``run`` takes a stored upload through unpacking, reading, CRS and mapping,
checks, and (when asked and the file is accepted) the commit, recording every
step on an ``ImportBatch``. Nothing is written to the registry unless every row
passed (or the surveyor chose "valid rows only"), and the commit is one
transaction with the batch's own update, so the database never holds half an
import.
"""

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from importers import archive, checks, formats, reading, staging, uploads
from importers import crs as crs_module
from importers.errors import ImportRefused, Problem
from importers.mapping import REQUIRED, FieldMapping, propose, source_key
from importers.models import ImportBatch, SavedMapping
from registry import access
from registry.choices import LandClass
from registry.errors import PermissionRefused, RegistryError
from registry.models import Building, Parcel, Project
from registry.resurvey import Staged, buildings_apply, survey_apply, survey_undo
from registry.workflow import CLEARED_STATUSES, Status
from spatial.crs import STORAGE_SRID
from spatial.service_area import service_area

Progress = Callable[[int, str], None]
PRECISION_M = 0.001
OPEN_STATES = ("queued", "checking", "checked", "committing")
IMPORT_LOCK = 440311  # advisory lock class of imports; the second key is the project
REPORTED_PROBLEMS = 5000
QUOTED_CHARACTERS = 40  # of a source value in a message
CODE_MODEL = {"parcels": Parcel, "buildings": Building}
# Waits between attempts to record a failure once the database is back.
RECONNECT_DELAYS_S = (0, 1, 2, 4, 8, 15, 30, 60)


@dataclass
class Options:
    """What the surveyor chose for this import."""

    layer: str = "parcels"
    source_layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    mapping: dict | None = None
    land_class: str | None = None
    repair: bool = False
    valid_only: bool = False
    overlap_tolerance_m2: float = 1.0
    area_tolerance_pct: float = 5.0

    def as_dict(self) -> dict:
        """Return the options as JSON-ready data for the batch record."""
        return asdict(self)

    @classmethod
    def chosen(cls, data: dict) -> "Options":
        """Return the options a form's or serializer's cleaned data chose."""
        return cls(
            layer=data["layer"],
            source_layer=data.get("source_layer") or None,
            crs=data.get("crs") or None,
            encoding=data.get("encoding") or None,
            land_class=data.get("land_class") or None,
            mapping=data.get("mapping") or None,
            repair=data["repair"],
            valid_only=data["valid_only"],
        )


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def new_batch(
    *, path: Path, name: str, project: Project, actor, options: Options
) -> ImportBatch:
    """Record an upload as a batch in state ``queued`` (permission checked)."""
    if not access.can_import(actor, project):
        raise PermissionRefused(
            _("You may not import survey data into project %(project)s."),
            project=project.code,
        )
    return ImportBatch.objects.create(
        project=project,
        layer=options.layer,
        created_by=actor,
        file_name=name[:255],
        sha256=sha256_of(path),
        size_bytes=path.stat().st_size,
        options=options.as_dict(),
        upload_path=str(path),
        state=ImportBatch.State.QUEUED,
    )


def run(
    batch: ImportBatch,
    *,
    commit: bool,
    actor=None,
    progress: Progress | None = None,
) -> ImportBatch:
    """Check the batch's upload and, if ``commit`` and accepted, commit it.

    ``actor`` is who commits (default: who uploaded); the registry's permission
    check, the history and ``committed_by`` all name them.
    """
    committer = actor or batch.created_by
    options = Options(**batch.options)
    report_progress = _progress_recorder(batch, progress)
    try:
        batch.state = ImportBatch.State.CHECKING
        batch.save(update_fields=["state"])
        with (
            tempfile.TemporaryDirectory(prefix="landreg-import-") as workdir,
            transaction.atomic(),
        ):
            if commit:
                # One import per project at a time: the overlap checks and the
                # writes of two imports must not interleave.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)",
                        [IMPORT_LOCK, batch.project_id],
                    )
            checked = _check(batch, options, Path(workdir), report_progress)
            if not checked.accepted or not commit:
                _drop_stage()
                state = (
                    ImportBatch.State.CHECKED
                    if checked.accepted
                    else ImportBatch.State.REFUSED
                )
                report_progress(100, "")
                return _finish(batch, state, checked)
            report_progress(90, "committing")
            now = timezone.now()
            if options.layer == "parcels":
                applied = survey_apply(
                    project=batch.project,
                    parcels=checked.staged,
                    actor=committer,
                    import_batch_id=batch.pk,
                    at=now,
                )
            else:
                applied = buildings_apply(
                    project=batch.project,
                    buildings=checked.staged,
                    actor=committer,
                    at=now,
                )
            _drop_stage()
            batch.created, batch.updated, batch.unchanged = (
                applied.created,
                applied.updated,
                applied.unchanged,
            )
            batch.committed_at, batch.committed_by = now, committer
            report_progress(100, "")
            finished = _finish(batch, ImportBatch.State.COMMITTED, checked)
        # A committed upload is not needed again, unless another check of the
        # same file may still be committed (only stored uploads are removed; a
        # file the command was pointed at stays where it is).
        others = ImportBatch.objects.filter(upload_path=batch.upload_path).exclude(
            pk=batch.pk
        )
        if not others.filter(state__in=OPEN_STATES).exists():
            uploads.discard(batch.upload_path)
        return finished
    except RegistryError as error:
        batch.state = ImportBatch.State.REFUSED
        batch.error = error.bilingual
        batch.report = {"refusal": error.as_dict(), "accepted": False}
        batch.progress, batch.stage = 100, ""
        batch.save()
        return batch
    except (OperationalError, InterfaceError) as error:
        # The database went away (restarted, network): the transaction died with
        # the connection; say so on the batch once the server is back.
        record_lost_connection(batch.pk, error)
        raise
    except Exception as error:
        # Anything else unforeseen (a library failed): the transaction rolled
        # back, and the batch says so before the error goes on.
        ImportBatch.objects.filter(pk=batch.pk).update(
            state=ImportBatch.State.FAILED,
            error=f"导入失败 / import failed: {type(error).__name__}: {error}"[:2000],
            stage="",
        )
        raise


def record_lost_connection(batch_id: int, error: Exception) -> None:
    """Mark the batch failed with the reason, waiting for the database (≤ 2 min).

    The update cannot go through the broken connection, and the server may
    still be starting: each attempt opens a new connection. A batch that
    finished meanwhile (committed, refused) is left as it is.
    """
    reason = (
        "导入失败：与数据库的连接中断（数据库重启或网络故障），本批次未写入任何数据；"
        "请重新检查该文件。 / Import failed: the connection to the database was lost "
        "(database restarted or network failure); nothing of this batch was "
        f"written. Check the file again. ({type(error).__name__}: {error})"
    )[:2000]
    unfinished = (*OPEN_STATES, ImportBatch.State.FAILED)
    for delay in RECONNECT_DELAYS_S:
        time.sleep(delay)
        connection.close()  # never reuse the broken connection
        try:
            ImportBatch.objects.filter(pk=batch_id, state__in=unfinished).update(
                state=ImportBatch.State.FAILED, error=reason, stage=""
            )
            return
        except DatabaseError:
            continue


def undo(batch: ImportBatch, *, actor) -> ImportBatch:
    """Undo a committed batch (see ``registry.resurvey.survey_undo``)."""
    if batch.layer != ImportBatch.Layer.PARCELS:
        raise ImportRefused(
            _(
                "Building imports cannot be undone here: buildings keep no previous "
                "footprint. Import the corrected file instead."
            )
        )
    with transaction.atomic():
        # The state is checked on the locked row: two undo requests at once must
        # not both pass.
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != ImportBatch.State.COMMITTED:
            raise ImportRefused(
                _(
                    "Batch #%(batch)s is %(state)s; only committed imports can be "
                    "undone."
                ),
                batch=locked.pk,
                state=ImportBatch.State(locked.state).label,
            )
        now = timezone.now()
        survey_undo(import_batch_id=locked.pk, actor=actor, at=now)
        locked.state = ImportBatch.State.UNDONE
        locked.undone_at, locked.undone_by = now, actor
        locked.save(update_fields=["state", "undone_at", "undone_by"])
    return locked


# Each check's problems, in the order the checks run: rows arrive a chunk at a
# time, but the report lists a row's problems as one pass over the file would.
STAGES = {
    "parcels": (
        "reader", "crs", "code", "geometry", "service", "elsewhere", "settled",
        "land_class", "declared", "duplicates", "overlaps", "registered",
        "declared_area",
    ),
    "buildings": (
        "reader", "crs", "code", "geometry", "service", "parcel", "elsewhere",
        "floors", "floor_area", "legality", "owner_group", "duplicates",
    ),
}  # fmt: skip


class Findings:
    """The problems found so far, by the check that found them."""

    def __init__(self, layer: str) -> None:
        self.by_check: dict[str, list[Problem]] = {s: [] for s in STAGES[layer]}

    def add(self, check: str, problems) -> None:
        """Record ``problems`` found by ``check``."""
        self.by_check[check].extend(problems)

    def reported(self) -> list[Problem]:
        """Return every problem, leaving out follow-ons on rows not read.

        A row the reader already rejected (a deleted record, a shape without its
        attributes) gets no complaints about what is missing from it.
        """
        reader = self.by_check["reader"]
        unread = {p.row for p in reader if p.severity == "error" and p.row}
        return reader + [
            p
            for check, found in self.by_check.items()
            if check != "reader"
            for p in found
            if p.row not in unread
        ]


@dataclass
class Placement:
    """Where the checked rows lie, gathered chunk by chunk."""

    area: object  # the service area (shapely, prepared)
    any_ok: bool = False
    any_inside: bool = False
    bounds: list = field(default_factory=list)  # of the stored geometries


@dataclass
class Checked:
    """The outcome of reading and checking, ready to commit if accepted."""

    accepted: bool
    report: dict
    staged: Staged
    features: int
    rejected: int


def _check(batch, options: Options, workdir: Path, progress: Progress) -> Checked:
    name = batch.file_name
    progress(5, "unpacking")
    directory = archive.unpack(
        Path(batch.upload_path),
        workdir,
        name=name,
        limits=archive.Limits.from_settings(),
    )
    source = formats.locate(directory, name=name, layer=options.source_layer)
    batch.source_format, batch.source_layer = source.kind.value, source.layer
    progress(15, "reading")
    layer = reading.read(source, name=name, encoding_override=options.encoding)
    batch.encoding, batch.encoding_source = layer.encoding, layer.encoding_source
    resolved = crs_module.resolve(
        override=options.crs, declared_wkt=layer.declared_wkt, file=name
    )
    batch.crs = resolved.label[:255]
    mapping = _mapping(options, layer.field_names, name=name, project=batch.project)
    batch.mapping = mapping.as_dict()
    findings = Findings(options.layer)
    findings.add("reader", layer.problems)
    findings.add("crs", resolved.warnings)
    area = service_area(settings.IMPORT_SERVICE_AREA, settings.IMPORT_SERVICE_MARGIN_M)
    shapely.prepare(area)
    placement = Placement(area)

    progress(35, "checking geometry")
    features = 0
    with connection.cursor() as cursor:
        staging.create(cursor, options.layer)
        # None when the file is in EPSG:4547 already (asked once, not per chunk).
        source_crs = None if resolved.crs.to_epsg() == STORAGE_SRID else resolved.crs
        vertices, most_vertices = 0, settings.IMPORT_LIMITS["file_vertices"]
        for chunk in layer.chunks():
            vertices += int(shapely.get_num_coordinates(chunk.geoms).sum())
            if vertices > most_vertices:
                # Stop reading: the rest of such a file is not worth the work.
                raise ImportRefused(
                    _(
                        "%(file)s holds more than %(limit)s vertices (%(count)s in "
                        "its first %(rows)s rows); split it into files of at most "
                        "%(limit)s."
                    ),
                    file=name,
                    limit=f"{most_vertices:,}",
                    count=f"{vertices:,}",
                    rows=f"{features + len(chunk.rows):,}",
                )
            columns = _check_chunk(
                chunk, source_crs, mapping, options, findings, placement
            )
            staging.append(cursor, columns)
            features += len(chunk.rows)
            if layer.records:
                progress(35 + 20 * features // layer.records, "checking geometry")
        _check_placement(placement, layer, resolved, batch, options, findings)

        progress(55, "checking overlaps")
        staging.index(cursor)
        if options.layer == "parcels":
            _parcel_checks(cursor, mapping, options, batch, findings, placement)
        else:
            _building_checks(cursor, mapping, batch, findings)
        progress(80, "reporting")
        problems = findings.reported()
        staging.reject(cursor, checks.rows_with_errors(problems))
        valid = staging.kept(cursor)
    file_errors = [p for p in problems if p.severity == "error" and p.row is None]
    rejected = features - valid
    accepted = not file_errors and (rejected == 0 or (options.valid_only and valid > 0))
    report = {
        "file": name,
        "format": source.kind.label,
        "layer": source.layer,
        "layers": source.layers,
        "encoding": {"name": layer.encoding, "source": layer.encoding_source},
        "crs": {"label": resolved.label, "source": resolved.source},
        "mapping": mapping.as_dict(),
        "fields": layer.field_names,
        "counts": {
            "features": features,
            "valid": valid,
            "rejected": rejected,
            "errors": sum(p.severity == "error" for p in problems),
            "warnings": sum(p.severity == "warning" for p in problems),
        },
        "accepted": accepted,
        "preview": layer.preview,
        "summary": checks.summarise(problems),
        "problems": [
            p.as_dict()
            for p in sorted(problems, key=_problem_order)[:REPORTED_PROBLEMS]
        ],
        "problems_truncated": len(problems) > REPORTED_PROBLEMS,
    }
    staged = Staged(staging.ACCEPTED[options.layer], valid)
    return Checked(accepted, report, staged, features, rejected)


def _check_chunk(chunk, source_crs, mapping, options, findings, placement) -> dict:
    """Check one chunk's rows on their own; return its columns for the stage."""
    rows, fields = chunk.rows, mapping.fields
    count = len(rows)
    codes = _text_column(chunk.fields.get(fields["code"]), count)
    longest = CODE_MODEL[options.layer]._meta.get_field("code").max_length
    lengths = np.fromiter((len(c) for c in codes), dtype=np.int64, count=count)
    findings.add(
        "code",
        [
            Problem.of(
                _(
                    "The value is %(length)s characters long; at most %(limit)s are "
                    "stored."
                ),
                row=int(rows[i]),
                field=fields["code"],
                length=f"{int(lengths[i]):,}",
                limit=longest,
            )
            for i in np.flatnonzero(lengths > longest)
        ],
    )
    codes[lengths > longest] = ""  # never quoted, stored or indexed
    # What the reader found in these rows (a NUL, a number that is none) names
    # the row's code too, as every other check does.
    if chunk.problems:
        code_of = dict(zip(rows.tolist(), codes, strict=True))
        findings.add(
            "reader",
            [
                replace(p, code=code_of.get(p.row, "")) if p.row and not p.code else p
                for p in chunk.problems
            ],
        )
    findings.add(
        "code",
        [
            Problem.of(_("The code is empty."), row=int(rows[i]), field=fields["code"])
            for i in np.flatnonzero(lengths == 0)
        ],
    )
    geoms, ok, geometry_problems = checks.geometry(
        rows, codes, chunk.geoms, repair=options.repair
    )
    chunk.geoms = None  # the source geometries are not needed again
    findings.add("geometry", geometry_problems)
    storage = np.full(count, None, dtype=object)
    storage[ok] = _to_storage(geoms[ok], source_crs)
    del geoms
    inside = _place(storage, ok, rows, codes, placement, findings)
    ewkb = np.full(count, None, dtype=object)
    ewkb[ok] = shapely.to_wkb(
        shapely.set_srid(storage[ok], STORAGE_SRID), hex=True, include_srid=True
    )
    columns = {
        "row": pa.array(rows, pa.int32()),
        "code": pa.array(codes, pa.string()),
        "ok": pa.array(ok),
        "keep": pa.array(ok),
        "inside": pa.array(inside),
        "geom": pa.array(ewkb, pa.string()),
    }
    if options.layer == "parcels":
        columns |= _parcel_columns(
            chunk, rows, codes, storage, ok, mapping, options, findings
        )
    else:
        columns |= _building_columns(chunk, rows, codes, storage, ok, mapping, findings)
    return columns


def _to_storage(geoms: np.ndarray, crs) -> np.ndarray:
    """Return ``geoms`` in EPSG:4547, coordinates rounded to the millimetre.

    A survey is not more precise, and the same parcels delivered again in another
    CRS then compare equal. Rounded point by point, keeping the surveyor's
    vertices in their order (GEOS's topological rounding rebuilds every ring and
    costs ten times as much); only a ring the rounding makes invalid is rounded
    again topologically.
    """
    moved = geoms if crs is None else crs_module.to_storage(geoms, crs)
    rounded = shapely.set_precision(moved, PRECISION_M, mode="pointwise")
    broken = ~shapely.is_valid(rounded)
    if broken.any():
        rounded[broken] = shapely.set_precision(moved[broken], PRECISION_M)
    return rounded


def _parcel_columns(chunk, rows, codes, storage, ok, mapping, options, findings):
    found: list[Problem] = []
    land_classes = _land_classes(mapping, chunk.fields, rows, codes, options, found)
    findings.add("land_class", found)
    declared_field = mapping.fields.get("declared_area")
    found = []
    declared = _numbers(
        chunk.fields.get(declared_field), len(rows), rows, codes, declared_field, found
    )
    findings.add("declared", found)
    if declared_field:
        findings.add(
            "declared_area",
            checks.declared_area(
                rows,
                codes,
                declared,
                storage,
                ok,
                tolerance_pct=options.area_tolerance_pct,
                field_name=declared_field,
            ),
        )
    return {
        "land_class": pa.array(land_classes, pa.string()),
        "declared": pa.array(declared, pa.float64()),
    }


def _building_columns(chunk, rows, codes, storage, ok, mapping, findings):
    fields, count = mapping.fields, len(rows)
    parcel_codes = _text_column(chunk.fields.get(fields["parcel_code"]), count)
    found: list[Problem] = []
    floors = _numbers(
        chunk.fields.get(fields.get("floors")),
        count,
        rows,
        codes,
        fields.get("floors"),
        found,
    )
    findings.add("floors", found)
    floors = np.array([int(f) if f else 1 for f in floors], dtype=object)
    found = []
    floor_area = _numbers(
        chunk.fields.get(fields.get("floor_area")),
        count,
        rows,
        codes,
        fields.get("floor_area"),
        found,
    )
    findings.add("floor_area", found)
    footprint_area = np.where(
        ok, shapely.area(np.where(ok, storage, shapely.Polygon())), 0
    )
    floor_area = np.array(
        [
            a if a else float(fa) * int(f)
            for a, fa, f in zip(floor_area, footprint_area, floors, strict=True)
        ],
        dtype=object,
    )
    found = []
    legality = _vocabulary(
        mapping, chunk.fields, "legality", rows, codes, found, default="unknown"
    )
    findings.add("legality", found)
    found = []
    owner = _vocabulary(
        mapping, chunk.fields, "owner_group", rows, codes, found, default=None
    )
    findings.add("owner_group", found)
    return {
        "parcel_code": pa.array(parcel_codes, pa.string()),
        "floors": pa.array(floors, pa.int32()),
        "floor_area": pa.array(floor_area, pa.float64()),
        "legality": pa.array(legality, pa.string()),
        "owner_group": pa.array(owner, pa.string()),
    }


def _parcel_checks(cursor, mapping, options, batch, findings, placement) -> None:
    """Run the checks between rows, and against the registry, over the stage."""
    code_field = mapping.fields["code"]
    findings.add(
        "elsewhere",
        checks.registered_elsewhere(
            cursor, layer="parcels", project_id=batch.project_id, field_name=code_field
        ),
    )
    # Cleared and banked land is settled: only a registry admin may re-survey it
    # (delivering it again unchanged is fine).
    if not access.is_registry_admin(batch.created_by):
        findings.add(
            "settled",
            checks.settled_changes(
                cursor,
                project_id=batch.project_id,
                statuses=[s.value for s in CLEARED_STATUSES],
                labels={s.value: s.label for s in Status},
                field_name=code_field,
            ),
        )
    findings.add("duplicates", checks.duplicate_codes(cursor, code_field))
    tolerance = options.overlap_tolerance_m2
    findings.add("overlaps", checks.overlaps(cursor, tolerance_m2=tolerance))
    if placement.bounds:
        bounds = np.array(placement.bounds)
        extent = (*bounds[:, :2].min(axis=0), *bounds[:, 2:].max(axis=0))
        findings.add(
            "registered",
            checks.registered_overlaps(cursor, tolerance_m2=tolerance, bounds=extent),
        )


def _building_checks(cursor, mapping, batch, findings) -> None:
    """Run the checks between rows, and against the registry, over the stage."""
    fields = mapping.fields
    findings.add(
        "parcel",
        checks.unknown_parcels(
            cursor,
            project_id=batch.project_id,
            project_code=batch.project.code,
            field_name=fields["parcel_code"],
        ),
    )
    findings.add(
        "elsewhere",
        checks.registered_elsewhere(
            cursor,
            layer="buildings",
            project_id=batch.project_id,
            field_name=fields["code"],
        ),
    )
    findings.add("duplicates", checks.duplicate_codes(cursor, fields["code"]))


def _place(storage, ok, rows, codes, placement: Placement, findings) -> None:
    """Check one chunk's stored geometries against the service area.

    Return which rows lie inside it.
    """
    if not ok.any():
        return ok
    placement.any_ok = True
    inside = np.zeros(len(storage), dtype=bool)
    inside[ok] = shapely.intersects(placement.area, storage[ok])
    placement.any_inside |= bool(inside.any())
    findings.add(
        "service",
        [
            Problem.of(
                _("The parcel lies outside the service area."),
                row=int(rows[i]),
                code=codes[i],
                field="geometry",
            )
            for i in np.flatnonzero(ok & ~inside)
        ],
    )
    placement.bounds.append(shapely.total_bounds(storage[ok]))
    return inside


def _check_placement(placement, layer, resolved, batch, options, findings) -> None:
    """Refuse a file lying wholly outside Guangming; hint at GCJ-02 offsets."""
    if not placement.any_ok:
        return
    if not placement.any_inside:
        # The file is refused: read its geometries again, as they came, to say
        # where it lies and why.
        source = _source_geometries(layer, repair=options.repair)
        bounds = shapely.total_bounds(source)
        hints = crs_module.extent_hints(source, resolved.crs, placement.area)
        raise ImportRefused(
            _(
                "%(file)s lies outside Guangming: read as %(crs)s its extent is "
                "%(extent)s.%(hints)s"
            ),
            file=batch.file_name,
            crs=resolved.label,
            extent=", ".join(f"{v:.6g}" for v in bounds),
            # Lazy, so that each language of the message gets its own hints.
            hints=format_lazy(" {}" * len(hints), *hints) if hints else "",
        )
    # The sample the hint would take of the parcels themselves.
    with connection.cursor() as cursor:
        sample = staging.points_inside(cursor, crs_module.SAMPLE)
    boundary = shapely.from_wkb(bytes(batch.project.boundary.wkb))
    for hint in crs_module.gcj02_hint(shapely.points(sample), boundary):
        findings.add("service", [Problem.of(hint, row=None, severity="warning")])


def _source_geometries(layer, *, repair: bool) -> np.ndarray:
    """Return the source geometries of the rows whose geometry passed its checks."""
    kept = []
    for rows, geoms in layer.geometries():
        blank = np.full(len(rows), "", dtype=object)
        _, ok, _ = checks.geometry(rows, blank, geoms, repair=repair)
        kept.append(geoms[ok])
    return np.concatenate(kept) if kept else np.array([], dtype=object)


def _vocabulary(mapping, fields, target, rows, codes, problems, *, default):
    source_field = mapping.fields.get(target)
    out = np.full(len(rows), default or "", dtype=object)
    if not source_field:
        return out
    values = fields[source_field]
    for i, mapped in enumerate(_mapped(mapping, target, values)):
        value = values[i]
        if mapped:
            out[i] = mapped
        elif default and value in (None, ""):
            out[i] = default
        else:
            problems.append(
                Problem.of(
                    _("Unknown value “%(value)s” for %(target)s."),
                    row=int(rows[i]),
                    code=codes[i],
                    field=source_field,
                    value=_quoted(value),
                    target=target,
                )
            )
    return out


def _mapping(
    options: Options, field_names: list[str], *, name: str, project: Project
) -> FieldMapping:
    if options.mapping:
        mapping = FieldMapping.from_dict({**options.mapping, "layer": options.layer})
    else:
        saved = (
            SavedMapping.objects.filter(
                project=project,
                layer=options.layer,
                source_key=source_key(field_names),
            )
            .order_by("-created_at", "-pk")
            .first()
        )
        mapping = (
            FieldMapping.from_dict(saved.mapping)
            if saved
            else propose(field_names, options.layer)
        )
    required = [
        t
        for t in REQUIRED[options.layer]
        if not (t == "land_class" and options.land_class)
    ]
    unknown = [f"{t}={s}" for t, s in mapping.fields.items() if s not in field_names]
    missing = [t for t in required if t not in mapping.fields]
    if unknown or missing:
        raise ImportRefused(
            _(
                "%(file)s: the field mapping does not fit the file (missing: "
                "%(missing)s; not in the file: %(unknown)s). The file's fields are: "
                "%(fields)s."
            ),
            file=name,
            missing=", ".join(missing) or "—",
            unknown=", ".join(unknown) or "—",
            fields=", ".join(field_names) or "—",
        )
    return mapping


def _land_classes(mapping, fields, rows, codes, options, problems) -> np.ndarray:
    if options.land_class:
        if options.land_class not in LandClass.values:
            raise ImportRefused(
                _("Unknown land class “%(value)s”; use one of %(choices)s."),
                value=options.land_class,
                choices=", ".join(LandClass.values),
            )
        if "land_class" not in mapping.fields:
            return np.full(len(rows), options.land_class, dtype=object)
    source_field = mapping.fields["land_class"]
    values = fields[source_field]
    out = _mapped(mapping, "land_class", values)
    for i in np.flatnonzero(out == ""):
        problems.append(
            Problem.of(
                _("Unknown land class “%(value)s”; map it to one of the three."),
                row=int(rows[i]),
                code=codes[i],
                field=source_field,
                value=_quoted(values[i]),
            )
        )
    return out


def _quoted(value, longest: int = QUOTED_CHARACTERS) -> str:
    """Return a source value as a message quotes it: cut short when long."""
    text = "" if value is None else str(value)
    return text if len(text) <= longest else f"{text[:longest]}…"


def _mapped(mapping, target: str, values) -> np.ndarray:
    """Return each value mapped into ``target``'s vocabulary ("" when unknown).

    The mapping is asked once per distinct value: a layer of a million rows
    holds a handful of them.
    """
    known: dict = {}
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        if value not in known:
            known[value] = mapping.value_for(target, value) or ""
        out[i] = known[value]
    return out


def _numbers(values, length, rows, codes, field_name, problems) -> np.ndarray:
    out = np.full(length, None, dtype=object)
    if values is None:
        return out
    for i, value in enumerate(values):
        if value is None or value == "":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(
                Problem.of(
                    _("“%(value)s” is not a number."),
                    row=int(rows[i]),
                    code=codes[i],
                    field=field_name,
                    value=value,
                )
            )
            continue
        if number <= 0:
            problems.append(
                Problem.of(
                    _("The declared area must be positive."),
                    row=int(rows[i]),
                    code=codes[i],
                    field=field_name,
                )
            )
            continue
        out[i] = number
    return out


def _text_column(values, length: int) -> np.ndarray:
    if values is None:
        return np.full(length, "", dtype=object)
    return np.array(["" if v is None else str(v).strip() for v in values], dtype=object)


def _drop_stage() -> None:
    # The staging table would go with the transaction; a test's transaction
    # (or a second check in one) goes on.
    with connection.cursor() as cursor:
        staging.drop(cursor)


def _problem_order(problem: Problem):
    return (problem.row is not None, problem.row or 0, problem.severity != "error")


def _finish(batch: ImportBatch, state: str, checked: Checked) -> ImportBatch:
    batch.state = state
    batch.report = checked.report
    batch.features, batch.rejected = checked.features, checked.rejected
    batch.progress, batch.stage = 100, ""
    batch.save()
    return batch


def _progress_recorder(batch: ImportBatch, callback: Progress | None) -> Progress:
    def record(percent: int, stage: str) -> None:
        # Written outside any transaction so that the batch page and the API show
        # progress while the import's own transaction is still open.
        ImportBatch.objects.using("progress").filter(pk=batch.pk).update(
            progress=percent, stage=stage
        )
        if callback:
            callback(percent, stage)

    return record
