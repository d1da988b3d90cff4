"""Reading one layer of an upload into arrays: rows, geometries, decoded fields.

Geometry is read by pyogrio as WKB in Arrow batches. For shapefiles the table is
read by ``importers.dbf`` instead of GDAL, so that the importer decides the text
encoding and sees every record: GDAL skips records flagged deleted and stops at
the shorter of .shp and .dbf without a word, and either would lose parcels.
"""

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyogrio.raw
import shapely
from django.utils.translation import gettext_lazy as _

from importers import encoding as encodings
from importers.dbf import DbfError, read_dbf, shx_record_count
from importers.errors import ImportRefused, Problem
from importers.formats import Kind, Source, open_checked

BATCH_SIZE = 65_536


@dataclass
class Layer:
    """Everything read from the source, before any mapping or check."""

    rows: np.ndarray  # 1-based record numbers as the surveyor's GIS counts them
    geoms: np.ndarray  # shapely geometries in the source CRS; None where null
    fields: dict[str, np.ndarray]  # decoded values per source field
    field_names: list[str]
    declared_wkt: str
    encoding: str
    encoding_source: str
    problems: list[Problem] = field(default_factory=list)


def read(source: Source, *, name: str, encoding_override: str | None = None) -> Layer:
    """Read the source's layer, or raise ``ImportRefused``."""
    info = open_checked(source, name=name)
    if source.kind == Kind.SHAPEFILE:
        return _read_shapefile(source, info, name=name, override=encoding_override)
    return _read_ogr(source, info)


def _geometries(source: Source) -> tuple[np.ndarray, np.ndarray]:
    """Return (fid, geometry) arrays, read in Arrow batches."""
    fids, geoms = [], []
    with pyogrio.raw.open_arrow(
        source.path,
        layer=source.layer,
        columns=[],
        return_fids=True,
        batch_size=BATCH_SIZE,
        use_pyarrow=True,
    ) as (meta, reader):
        geometry_name = meta["geometry_name"] or "wkb_geometry"
        for batch in reader:
            fids.append(batch.column(meta["fid_column"] or "OGC_FID").to_numpy())
            wkb = batch.column(geometry_name).to_numpy(zero_copy_only=False)
            geoms.append(shapely.from_wkb(wkb, on_invalid="ignore"))
    if not fids:
        return np.array([], dtype=np.int64), np.array([], dtype=object)
    return np.concatenate(fids), np.concatenate(geoms)


def _read_shapefile(source: Source, info: dict, *, name: str, override) -> Layer:
    try:
        table = read_dbf(source.sidecars[".dbf"])
        shapes = shx_record_count(source.sidecars[".shx"])
    except DbfError as error:
        raise ImportRefused(
            _("%(file)s: the .dbf or .shx file is damaged: %(error)s"),
            file=name,
            error=str(error),
        ) from error
    records = max(table.file_count, shapes)
    rows = np.arange(1, records + 1)
    problems: list[Problem] = []
    if table.header_count != table.file_count:
        problems.append(
            Problem.of(
                _(
                    "The .dbf header announces %(header)s records but the file "
                    "holds %(actual)s."
                ),
                row=None,
                severity="warning",
                header=table.header_count,
                actual=table.file_count,
            )
        )
    if table.file_count != shapes:
        problems.append(
            Problem.of(
                _(
                    "The .dbf has %(records)s records but the .shp has %(shapes)s "
                    "shapes: the files do not belong together or one is truncated."
                ),
                row=None,
                records=table.file_count,
                shapes=shapes,
            )
        )
    for row in range(min(table.file_count, shapes) + 1, records + 1):
        problems.append(
            Problem.of(
                _("The record has attributes but no shape.")
                if table.file_count > shapes
                else _("The shape has no attribute record."),
                row=row,
            )
        )
    for index in np.flatnonzero(table.deleted):
        problems.append(
            Problem.of(
                _(
                    "The record is flagged deleted in the .dbf (GIS software hides "
                    "it). Restore it or pack the file before importing."
                ),
                row=int(index) + 1,
            )
        )
    cpg = source.sidecars.get(".cpg")
    choice = encodings.choose(
        raw={f.name: table.raw[f.name] for f in table.fields if f.kind in "CM"},
        rows=rows,
        override=override,
        cpg=cpg.read_text(encoding="ascii", errors="replace") if cpg else None,
        language_driver=table.language_driver,
        file=name,
    )
    problems.extend(choice.problems)
    fields = {}
    for dbf_field in table.fields:
        values = table.raw[dbf_field.name]
        if dbf_field.kind in "NF":
            fields[dbf_field.name] = _numbers(values, dbf_field.name, rows, problems)
        else:
            fields[dbf_field.name] = encodings.decode_column(values, choice.encoding)
        fields[dbf_field.name] = _pad(fields[dbf_field.name], records)
    fids, read_geoms = _geometries(source)
    geoms = np.full(records, None, dtype=object)
    in_range = (fids >= 0) & (fids < records)
    geoms[fids[in_range]] = read_geoms[in_range]
    prj = source.sidecars.get(".prj")
    declared = prj.read_text(encoding="utf-8", errors="replace") if prj else ""
    return Layer(
        rows,
        geoms,
        fields,
        [f.name for f in table.fields],
        declared or info["crs_wkt"],
        choice.encoding,
        choice.source,
        problems,
    )


def _read_ogr(source: Source, info: dict) -> Layer:
    meta, table = pyogrio.raw.read_arrow(
        source.path, layer=source.layer, return_fids=True
    )
    geometry_name = meta["geometry_name"] or "wkb_geometry"
    fid_name = meta["fid_column"] or "OGC_FID"
    names = [n for n in table.column_names if n not in {geometry_name, fid_name}]
    fields = {n: np.array(_plain(table.column(n)), dtype=object) for n in names}
    wkb = table.column(geometry_name).to_numpy(zero_copy_only=False)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    rows = np.arange(1, len(geoms) + 1)
    return Layer(rows, geoms, fields, names, info["crs_wkt"], "utf-8", "format")


def _plain(column: pa.ChunkedArray) -> list:
    return column.to_pylist()


def _numbers(values: np.ndarray, field_name: str, rows, problems) -> np.ndarray:
    out = np.full(len(values), None, dtype=object)
    for index, value in enumerate(values):
        text = value.strip().replace(b",", b"")
        if not text or set(text) <= {ord("*")}:
            continue
        try:
            out[index] = float(text)
        except ValueError:
            problems.append(
                Problem.of(
                    _("“%(value)s” is not a number."),
                    row=int(rows[index]),
                    field=field_name,
                    value=text.decode("latin-1")[:40],
                )
            )
    return out


def _pad(values: np.ndarray, length: int) -> np.ndarray:
    if len(values) >= length:
        return values
    return np.concatenate([values, np.full(length - len(values), None, dtype=object)])
