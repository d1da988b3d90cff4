"""Exports of the land moved into the land bank, as files GIS tools open.

The selection is one SQL query (filters: project, land class, street, banked date
range, and "as of" a past moment, from the history). GeoJSON is built feature by
feature in PostGIS (``ST_AsGeoJSON`` of each row, RFC 7946: WGS84
longitude/latitude, exterior rings counter-clockwise, 7 decimals ≈ 1 cm) and
streamed from a server-side cursor, so memory stays flat at any size. The other
formats are written by GDAL through pyogrio, in batches. Every export records
an ``ExportLog`` row and carries a manifest: when, what filter, CRS, feature count,
total area and the SHA-256 of the data.
"""

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry import access, spreadsheet, statistics
from registry.errors import PermissionRefused, RegistryError
from registry.workflow import Status
from spatial.area import to_lonlat
from spatial.crs import STORAGE_SRID

FORMATS = ("geojson", "gpkg", "shp", "fgb", "csv")
PROPERTIES = (
    "code",
    "project",
    "project_name",
    "land_class",
    "street",
    "status",
    "area_m2",
    "banked_on",
    "bank_ref",
)
AREA, BANKED_ON = PROPERTIES.index("area_m2"), PROPERTIES.index("banked_on")
SHAPEFILE_NAMES = {"project_name": "proj_name"}
BATCH = 5000


@dataclass(frozen=True)
class Selection:
    """Which parcels to export: banked ones unless other statuses are named.

    ``within`` is an area (a map selection, any geometry with an SRID): only
    parcels whose geometry (as of ``as_of``) intersects it are exported.
    """

    project: str | None = None
    land_class: str | None = None
    street: str | None = None
    banked_from: date | None = None
    banked_to: date | None = None
    as_of: datetime | None = None
    statuses: tuple[str, ...] = (Status.BANKED,)
    within: GEOSGeometry | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        """Return the filter as JSON-ready data for the manifest and the log."""
        values = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in asdict(self).items()
            if k != "within"
        }
        values["statuses"] = list(self.statuses)
        values["within"] = self.within.wkt if self.within is not None else None
        return values

    @property
    def banked_only(self) -> bool:
        """Return whether this is the export of banked land only."""
        return tuple(self.statuses) == (Status.BANKED,)


@dataclass
class Manifest:
    """What an export holds, written beside (or into) the data."""

    exported_at: str
    selection: dict
    format: str
    crs: str
    features: int = 0
    total_area_m2: float = 0.0
    sha256: str = ""
    files: list[str] = field(default_factory=list)

    @classmethod
    def begin(cls, selection: "Selection", fmt: str) -> "Manifest":
        """Start the manifest of an export; counts and hash fill in as it runs."""
        return cls(
            exported_at=timezone.now().isoformat(),
            selection=selection.as_dict(),
            format=fmt,
            crs="EPSG:4547" if fmt in DRIVERS else "EPSG:4326",
        )


class ExportRefused(RegistryError):
    """The export cannot be made as asked."""


def selection_sql(selection: Selection) -> tuple[str, dict]:
    """Return the SQL selecting the banked parcels of ``selection``, and params.

    Columns: the PROPERTIES, then ``geom`` (EPSG:4547). With ``as_of``, status,
    banking date and reference come from the history as it stood then, and
    geometry, area and land class from the revisions (a later re-survey keeps
    the geometry it replaced), as in ``registry.statistics``.
    """
    params: dict = {
        "as_of": selection.as_of or timezone.now(),
        "statuses": [str(status) for status in selection.statuses],
    }
    where = ["b.to_status = ANY(%(statuses)s)"]
    for column, value in (
        ("pr.code", selection.project),
        ("a.land_class", selection.land_class),
        ("p.street", selection.street),
    ):
        if value:
            key = column.split(".")[1]
            where.append(f"{column} = %({key})s")
            params[key] = value
    if selection.banked_from:
        where.append("b.banked_on >= %(banked_from)s")
        params["banked_from"] = selection.banked_from
    if selection.banked_to:
        where.append("b.banked_on <= %(banked_to)s")
        params["banked_to"] = selection.banked_to
    if selection.within is not None:
        within = selection.within
        if within.srid != STORAGE_SRID:
            within = within.transform(STORAGE_SRID, clone=True)
        where.append("ST_Intersects(a.geom, ST_GeomFromEWKB(%(within)s))")
        params["within"] = bytes(within.ewkb)
    sql = f"""
        WITH last_change AS (
            SELECT DISTINCT ON (h.parcel_id) h.parcel_id, h.to_status,
                   h.banked_on, h.bank_ref
            FROM registry_parcelstatuschange h
            WHERE h.at <= %(as_of)s
            ORDER BY h.parcel_id, h.at DESC, h.id DESC
        ), {statistics.REPLACED_LATER}
        SELECT p.code, pr.code AS project, pr.name_zh AS project_name,
               a.land_class, p.street,
               b.to_status AS status, round(a.area_m2::numeric, 2)::float8 AS area_m2,
               b.banked_on, b.bank_ref, a.geom
        FROM last_change b
        JOIN registry_parcel p ON p.id = b.parcel_id
        LEFT JOIN replaced_later r ON r.parcel_id = p.id
        CROSS JOIN LATERAL (
            SELECT COALESCE(NULLIF(r.old_land_class, ''), p.land_class) AS land_class,
                   COALESCE(r.old_geom, p.geom) AS geom,
                   CASE WHEN r.old_geom IS NULL THEN p.area_m2
                        ELSE ST_Area(r.old_geom) END AS area_m2
        ) a
        LEFT JOIN registry_project pr ON pr.id = p.project_id
        WHERE {" AND ".join(where)}
        ORDER BY p.code
    """  # noqa: S608  (only fixed column names are interpolated)
    return sql, params


def check_allowed(user) -> None:
    """Refuse anyone but analysts and registry admins."""
    if not access.can_export(user):
        raise PermissionRefused(_("Only analysts and registry administrators export."))


def geojson_stream(selection: Selection, manifest: Manifest) -> Iterator[bytes]:
    """Yield the selection as an RFC 7946 FeatureCollection, in chunks.

    The manifest goes last, as a foreign member, once the count, area and
    SHA-256 of the features are known. The rows are read in one transaction at
    REPEATABLE READ: a status change committed meanwhile is not half in it.
    """
    sql, params = selection_sql(selection)
    columns = ", ".join(f"s.{name}" for name in PROPERTIES)
    feature_sql = f"""
        SELECT ST_AsGeoJSON(t.*, 'geom', 7), t.area_m2 FROM (
            SELECT {columns},
                   ST_ForcePolygonCCW(ST_Transform(s.geom, 4326)) AS geom
            FROM ({sql}) s
        ) t
    """  # noqa: S608
    digest = hashlib.sha256()
    yield b'{"type": "FeatureCollection", "features": ['
    first = True
    with _snapshot(), connection.chunked_cursor() as cursor:
        cursor.execute(feature_sql, params)
        while rows := cursor.fetchmany(BATCH):
            parts = []
            for feature, area in rows:
                chunk = (feature if first else "," + feature).encode("utf-8")
                digest.update(chunk)
                parts.append(chunk)
                manifest.features += 1
                manifest.total_area_m2 += area or 0.0
                first = False
            yield b"".join(parts)
    manifest.sha256 = digest.hexdigest()
    tail = json.dumps({"manifest": asdict(manifest)}, ensure_ascii=False)[1:]
    yield b"], " + tail.encode("utf-8")


def write_files(
    selection: Selection, directory: Path, *, fmt: str, encoding: str = "UTF-8"
) -> Manifest:
    """Write the selection in ``fmt`` into ``directory``, with manifest.json.

    GeoPackage, Shapefile and FlatGeobuf are in EPSG:4547 (the registry's metres);
    CSV has WKT in EPSG:4326 and a UTF-8 byte-order mark for Excel on Chinese
    Windows. Shapefiles get a ``.cpg`` naming their encoding (UTF-8 or GBK).
    """
    if fmt not in FILE_NAMES:
        raise ExportRefused(_("Unknown export format “%(format)s”."), format=fmt)
    if encoding.upper() not in {"UTF-8", "GBK"}:
        raise ExportRefused(_("Shapefiles are written in UTF-8 or GBK."))
    manifest = Manifest.begin(selection, fmt)
    path = directory / FILE_NAMES[fmt]
    sql, params = selection_sql(selection)
    columns = ", ".join(f"s.{name}" for name in PROPERTIES)
    rows_sql = f"SELECT {columns}, ST_AsBinary(s.geom) FROM ({sql}) s"  # noqa: S608
    with _snapshot(), connection.chunked_cursor() as cursor:
        cursor.execute(rows_sql, params)
        if fmt == "csv":
            _write_csv(cursor, path, manifest)
        else:
            _write_ogr(cursor, path, fmt, encoding, manifest)
    digest = hashlib.sha256()
    for written in sorted(directory.iterdir()):
        manifest.files.append(written.name)
        digest.update(written.read_bytes())
    manifest.sha256 = digest.hexdigest()
    (directory / "manifest.json").write_text(
        json.dumps(asdict(manifest), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return manifest


FILE_NAMES = {
    "gpkg": "banked.gpkg",
    "shp": "banked.shp",
    "fgb": "banked.fgb",
    "csv": "banked.csv",
}
DRIVERS = {"gpkg": "GPKG", "shp": "ESRI Shapefile", "fgb": "FlatGeobuf"}


def zip_directory(directory: Path) -> bytes:
    """Return the files of ``directory`` as one zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


def _write_ogr(cursor, path: Path, fmt: str, encoding: str, manifest: Manifest):
    # FlatGeobuf cannot be appended to, so it is written in one go; the others
    # are appended batch by batch.
    batches = [cursor.fetchall()] if fmt == "fgb" else _batches(cursor)
    for number, rows in enumerate(batches):
        if not rows and number:
            break
        columns = list(zip(*rows, strict=True)) or [[] for _ in range(10)]
        fields = [np.array(column, dtype=object) for column in columns[:-1]]
        fields[AREA] = np.array(columns[AREA], dtype=np.float64)
        fields[BANKED_ON] = np.array(
            [
                np.datetime64(d) if d else np.datetime64("NaT")
                for d in columns[BANKED_ON]
            ],
            dtype="datetime64[D]",
        )
        pyogrio.raw.write(
            path,
            geometry=np.array([bytes(g) for g in columns[-1]], dtype=object),
            field_data=fields,
            # dBASE field names hold 10 bytes: shortened by a fixed table.
            fields=[SHAPEFILE_NAMES.get(n, n) for n in PROPERTIES]
            if fmt == "shp"
            else list(PROPERTIES),
            geometry_type="MultiPolygon",
            crs="EPSG:4547",
            driver=DRIVERS[fmt],
            encoding=encoding.upper() if fmt == "shp" else None,
            append=number > 0,
        )
        manifest.features += len(rows)
        manifest.total_area_m2 += float(fields[AREA].sum()) if len(rows) else 0.0


def _batches(cursor):
    first = cursor.fetchmany(BATCH)
    yield first
    while rows := cursor.fetchmany(BATCH):
        yield rows


def _write_csv(cursor, path: Path, manifest: Manifest) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*PROPERTIES, "wkt"])
        while rows := cursor.fetchmany(BATCH):
            geoms = to_lonlat(shapely.from_wkb([bytes(row[-1]) for row in rows]))
            for row, geom in zip(rows, geoms, strict=True):
                values = [v.isoformat() if isinstance(v, date) else v for v in row[:-1]]
                writer.writerow(
                    spreadsheet.row(
                        [*values, shapely.to_wkt(geom, rounding_precision=7)]
                    )
                )
                manifest.features += 1
                manifest.total_area_m2 += row[AREA] or 0.0


class _snapshot:
    """One consistent snapshot of the database for the whole export."""

    def __enter__(self):
        outermost = not connection.in_atomic_block
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        if outermost:  # inside a caller's transaction, its snapshot rules
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return self

    def __exit__(self, *exc):
        return self.atomic.__exit__(*exc)
