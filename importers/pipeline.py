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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import shapely
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from importers import archive, checks, formats, reading, uploads
from importers import crs as crs_module
from importers.errors import ImportRefused, Problem
from importers.mapping import REQUIRED, FieldMapping, propose, source_key
from importers.models import ImportBatch, SavedMapping
from registry import access
from registry.choices import LandClass
from registry.errors import PermissionRefused, RegistryError
from registry.models import Building, Parcel, Project
from registry.resurvey import (
    SurveyedBuildings,
    SurveyedParcels,
    buildings_apply,
    survey_apply,
    survey_undo,
)
from registry.workflow import CLEARED_STATUSES, Status
from spatial.service_area import service_area

Progress = Callable[[int, str], None]
PREVIEW_ROWS = 10
PRECISION_M = 0.001
OPEN_STATES = ("queued", "checking", "checked", "committing")
IMPORT_LOCK = 440311  # advisory lock class of imports; the second key is the project
REPORTED_PROBLEMS = 5000


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
    batch.state = ImportBatch.State.CHECKING
    batch.save(update_fields=["state"])
    try:
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
                    parcels=checked.rows,
                    actor=committer,
                    import_batch_id=batch.pk,
                    at=now,
                )
            else:
                applied = buildings_apply(
                    project=batch.project,
                    buildings=checked.rows,
                    actor=committer,
                    at=now,
                )
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
    except Exception as error:
        # Anything unforeseen (the database went away, a library failed): the
        # transaction rolled back, and the batch says so before the error goes on.
        ImportBatch.objects.filter(pk=batch.pk).update(
            state=ImportBatch.State.FAILED,
            error=f"导入失败 / import failed: {type(error).__name__}: {error}"[:2000],
            stage="",
        )
        raise


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


class HexEwkb:
    """Geometries as hex EWKB for COPY, converted chunk by chunk when iterated.

    Holding a million hex strings at once would double the import's memory.
    """

    CHUNK = 10_000

    def __init__(self, geoms: np.ndarray) -> None:
        self.geoms = geoms

    def __len__(self) -> int:
        return len(self.geoms)

    def __iter__(self):
        for start in range(0, len(self.geoms), self.CHUNK):
            chunk = shapely.set_srid(self.geoms[start : start + self.CHUNK], 4547)
            yield from shapely.to_wkb(chunk, hex=True, include_srid=True)


@dataclass
class Checked:
    """The outcome of reading and checking, ready to commit if accepted."""

    accepted: bool
    report: dict
    rows: SurveyedParcels | SurveyedBuildings
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
    problems: list[Problem] = list(layer.problems)
    problems += resolved.warnings

    progress(35, "checking geometry")
    rows = layer.rows
    codes = _text_column(layer.fields.get(mapping.fields["code"]), len(rows))
    for i in np.flatnonzero(codes == ""):
        problems.append(
            Problem.of(
                _("The code is empty."),
                row=int(rows[i]),
                field=mapping.fields["code"],
            )
        )
    geoms, ok, geometry_problems = checks.geometry(
        rows, codes, layer.geoms, repair=options.repair
    )
    problems += geometry_problems
    storage = np.full(len(geoms), None, dtype=object)
    # Coordinates are kept to the millimetre: a survey is not more precise, and
    # the same parcels delivered again in another CRS then compare equal.
    storage[ok] = shapely.set_precision(
        crs_module.to_storage(geoms[ok], resolved.crs), PRECISION_M
    )
    _check_service_area(storage, ok, rows, codes, layer, resolved, batch, problems)
    # The source geometries are no longer needed; at a million parcels they are
    # hundreds of megabytes.
    del geoms
    layer.geoms = None

    if options.layer == "parcels":
        progress(55, "checking overlaps")
        build = _parcel_checks(
            rows, codes, storage, ok, layer, mapping, options, batch, problems
        )
    else:
        build = _building_checks(
            rows, codes, storage, ok, layer, mapping, batch, problems
        )
    progress(80, "reporting")
    # Rows the reader already rejected (a deleted record, a shape without its
    # attributes) get no follow-on complaints about what is missing from them.
    unread = {p.row for p in layer.problems if p.severity == "error" and p.row}
    problems = list(layer.problems) + [
        p for p in problems[len(layer.problems) :] if p.row not in unread
    ]
    bad_rows = checks.rows_with_errors(problems)
    file_errors = [p for p in problems if p.severity == "error" and p.row is None]
    keep = ok & ~np.isin(rows, list(bad_rows))
    rejected = len(rows) - int(keep.sum())
    accepted = not file_errors and (
        rejected == 0 or (options.valid_only and bool(keep.any()))
    )
    payload = build(keep, HexEwkb(storage[keep]))
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
            "features": len(rows),
            "valid": int(keep.sum()),
            "rejected": rejected,
            "errors": sum(p.severity == "error" for p in problems),
            "warnings": sum(p.severity == "warning" for p in problems),
        },
        "accepted": accepted,
        "preview": _preview(layer, rows),
        "summary": checks.summarise(problems),
        "problems": [
            p.as_dict()
            for p in sorted(problems, key=_problem_order)[:REPORTED_PROBLEMS]
        ],
        "problems_truncated": len(problems) > REPORTED_PROBLEMS,
    }
    return Checked(accepted, report, payload, len(rows), rejected)


def _parcel_checks(rows, codes, storage, ok, layer, mapping, options, batch, problems):
    """Check the parcel fields; return a builder of the rows to commit."""
    elsewhere = (
        Parcel.objects.filter(code__in=set(codes) - {""})
        .exclude(project=batch.project)
        .values_list("code", "project__code")
    )
    problems += _registered_elsewhere(elsewhere, rows, codes, mapping.fields["code"])
    # Cleared and banked land is settled: only a registry admin may re-survey it
    # (delivering it again unchanged is fine).
    if not access.is_registry_admin(batch.created_by):
        settled = {
            code: (status, shapely.from_wkb(bytes(geom.wkb)))
            for code, status, geom in batch.project.parcels.filter(
                code__in=set(codes) - {""},
                status__in=[s.value for s in CLEARED_STATUSES],
            ).values_list("code", "status", "geom")
        }
        changed = [
            i
            for i, code in enumerate(codes)
            if code in settled
            and not (ok[i] and shapely.equals_exact(storage[i], settled[code][1], 0))
        ]
        for i in changed:
            problems.append(
                Problem.of(
                    _(
                        "Parcel %(code)s is already “%(status)s”; only a registry "
                        "administrator may re-survey it."
                    ),
                    row=int(rows[i]),
                    code=codes[i],
                    field=mapping.fields["code"],
                    status=Status(settled[codes[i]][0]).label,
                )
            )
    land_classes = _land_classes(mapping, layer, rows, codes, options, problems)
    declared_field = mapping.fields.get("declared_area")
    declared = _numbers(
        layer.fields.get(declared_field),
        len(rows),
        rows,
        codes,
        declared_field,
        problems,
    )
    problems += checks.duplicate_codes(rows, codes, mapping.fields["code"])
    problems += checks.overlaps(
        rows[ok], codes[ok], storage[ok], tolerance_m2=options.overlap_tolerance_m2
    )
    if declared_field:
        problems += checks.declared_area(
            rows,
            codes,
            declared,
            storage,
            ok,
            tolerance_pct=options.area_tolerance_pct,
            field_name=declared_field,
        )

    def build(keep, ewkb) -> SurveyedParcels:
        return SurveyedParcels(
            codes=list(codes[keep]),
            land_classes=list(land_classes[keep]),
            declared_areas=list(declared[keep]),
            ewkb=ewkb,
        )

    return build


def _building_checks(rows, codes, storage, ok, layer, mapping, batch, problems):
    """Check the building fields; return a builder of the rows to commit."""
    fields = mapping.fields
    parcel_codes = _text_column(layer.fields.get(fields["parcel_code"]), len(rows))
    known = set(
        batch.project.parcels.filter(code__in=set(parcel_codes)).values_list(
            "code", flat=True
        )
    )
    for i, parcel_code in enumerate(parcel_codes):
        if parcel_code not in known:
            problems.append(
                Problem.of(
                    _("Parcel %(parcel)s is not registered in project %(project)s."),
                    row=int(rows[i]),
                    code=codes[i],
                    field=fields["parcel_code"],
                    parcel=parcel_code or "—",
                    project=batch.project.code,
                )
            )
    elsewhere = (
        Building.objects.filter(code__in=set(codes) - {""})
        .exclude(parcel__project=batch.project)
        .values_list("code", "parcel__project__code")
    )
    problems += _registered_elsewhere(elsewhere, rows, codes, fields["code"])
    floors = _numbers(
        layer.fields.get(fields.get("floors")),
        len(rows),
        rows,
        codes,
        fields.get("floors"),
        problems,
    )
    floors = np.array([int(f) if f else 1 for f in floors], dtype=object)
    floor_area = _numbers(
        layer.fields.get(fields.get("floor_area")),
        len(rows),
        rows,
        codes,
        fields.get("floor_area"),
        problems,
    )
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
    legality = _vocabulary(
        mapping, layer, "legality", rows, codes, problems, default="unknown"
    )
    owner = _vocabulary(
        mapping, layer, "owner_group", rows, codes, problems, default=None
    )
    problems += checks.duplicate_codes(rows, codes, fields["code"])

    def build(keep, ewkb) -> SurveyedBuildings:
        return SurveyedBuildings(
            codes=list(codes[keep]),
            parcel_codes=list(parcel_codes[keep]),
            floors=list(floors[keep]),
            floor_areas=list(floor_area[keep]),
            legalities=list(legality[keep]),
            owner_groups=list(owner[keep]),
            ewkb=ewkb,
        )

    return build


def _registered_elsewhere(found, rows, codes, field_name: str) -> list[Problem]:
    """Report rows whose code another project already holds (``found``: pairs)."""
    elsewhere = dict(found)
    return [
        Problem.of(
            _("The code is already registered in project %(other)s."),
            row=int(rows[i]),
            code=codes[i],
            field=field_name,
            other=elsewhere[codes[i]] or "—",
        )
        for i in np.flatnonzero([code in elsewhere for code in codes])
    ]


def _vocabulary(mapping, layer, target, rows, codes, problems, *, default):
    source_field = mapping.fields.get(target)
    out = np.full(len(rows), default or "", dtype=object)
    if not source_field:
        return out
    values = layer.fields[source_field]
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
                    value="" if value is None else value,
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


def _land_classes(mapping, layer, rows, codes, options, problems) -> np.ndarray:
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
    values = layer.fields[source_field]
    out = _mapped(mapping, "land_class", values)
    for i in np.flatnonzero(out == ""):
        problems.append(
            Problem.of(
                _("Unknown land class “%(value)s”; map it to one of the three."),
                row=int(rows[i]),
                code=codes[i],
                field=source_field,
                value="" if values[i] is None else values[i],
            )
        )
    return out


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


def _check_service_area(storage, ok, rows, codes, layer, resolved, batch, problems):
    if not ok.any():
        return
    area = service_area(settings.IMPORT_SERVICE_AREA, settings.IMPORT_SERVICE_MARGIN_M)
    inside = np.zeros(len(storage), dtype=bool)
    inside[ok] = shapely.intersects(area, storage[ok].astype(object))
    if not inside[ok].any():
        bounds = shapely.total_bounds(layer.geoms[ok])
        hints = crs_module.extent_hints(layer.geoms[ok], resolved.crs, area)
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
    for i in np.flatnonzero(ok & ~inside):
        problems.append(
            Problem.of(
                _("The parcel lies outside the service area."),
                row=int(rows[i]),
                code=codes[i],
                field="geometry",
            )
        )
    boundary = shapely.from_wkb(bytes(batch.project.boundary.wkb))
    for hint in crs_module.gcj02_hint(storage[ok & inside], boundary):
        problems.append(Problem.of(hint, row=None, severity="warning"))


def _preview(layer, rows) -> list[list]:
    """Return the first rows as lists (row number first), in the file's field order.

    Lists, not objects: PostgreSQL's jsonb does not keep the order of keys.
    """
    return [
        [int(rows[i]), *(_json(layer.fields[n][i]) for n in layer.field_names)]
        for i in range(min(PREVIEW_ROWS, len(rows)))
    ]


def _json(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


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
