"""Reading one layer of an upload, chunk by chunk: rows, geometries, decoded fields.

Geometry is read by pyogrio as WKB in Arrow batches and handed on one batch at a
time, so that a million parcels never sit in memory at once. For shapefiles the
table is read by ``importers.dbf`` instead of GDAL, so that the importer decides
the text encoding and sees every record: GDAL skips records flagged deleted and
stops at the shorter of .shp and .dbf without a word, and either would lose
parcels. Records GDAL does not deliver come last, as rows without geometry.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyogrio.raw
import shapely
from django.utils.translation import gettext_lazy as _

from importers import encoding as encodings
from importers.dbf import DbfError, DbfTable, read_dbf, shx_record_count
from importers.errors import ImportRefused, Problem
from importers.formats import Kind, Source, open_checked

# Rows per chunk: each costs about 3 KB while it is checked (the geometries in
# several forms, their EWKB, the COPY text), so a chunk stays near 60 MB.
BATCH_SIZE = 20_000
PREVIEW_ROWS = 10


@dataclass
class Chunk:
    """Consecutive records of the layer, as far as one Arrow batch goes."""

    rows: np.ndarray  # 1-based record numbers as the surveyor's GIS counts them
    geoms: np.ndarray  # shapely geometries in the source CRS; None where null
    fields: dict[str, np.ndarray]  # decoded values per source field
    # Rows' problems found while decoding them (numbers that are not numbers).
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Layer:
    """What is known of the source before its rows are read, and its rows."""

    source: Source
    field_names: list[str]
    declared_wkt: str
    encoding: str
    encoding_source: str
    records: int | None  # None when the format does not say beforehand
    preview: list[list]  # the first rows, row number first, in field order
    problems: list[Problem]  # the file's and its records' (read before any row)
    table: DbfTable | None = None

    def chunks(self) -> Iterator[Chunk]:
        """Yield the rows a batch at a time (each record exactly once)."""
        if self.table is None:
            yield from _ogr_chunks(self.source)
        else:
            yield from _shapefile_chunks(self.source, self.table, self.encoding)

    def geometries(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (rows, source geometries) again, without decoding any field."""
        if self.table is None:
            start = 0
            for _fids, geoms, _batch in _arrow_batches(self.source, columns=None):
                yield np.arange(start + 1, start + len(geoms) + 1), geoms
                start += len(geoms)
            return
        records = max(self.table.file_count, self.records or 0)
        for fids, geoms, _batch in _arrow_batches(self.source, columns=[]):
            in_range = (fids >= 0) & (fids < records)
            yield fids[in_range] + 1, geoms[in_range]


def read(source: Source, *, name: str, encoding_override: str | None = None) -> Layer:
    """Open the source's layer and read what precedes its rows, or refuse it."""
    info = open_checked(source, name=name)
    if source.kind == Kind.SHAPEFILE:
        return _read_shapefile(source, info, name=name, override=encoding_override)
    return _read_ogr(source, info)


def _arrow_batches(source: Source, *, columns):
    """Yield (fid, geometry, batch) per Arrow batch of the layer."""
    with pyogrio.raw.open_arrow(
        source.path,
        layer=source.layer,
        columns=columns,
        return_fids=True,
        batch_size=BATCH_SIZE,
        use_pyarrow=True,
    ) as (meta, reader):
        geometry_name = meta["geometry_name"] or "wkb_geometry"
        fid_name = meta["fid_column"] or "OGC_FID"
        for batch in reader:
            fids = batch.column(fid_name).to_numpy()
            wkb = batch.column(geometry_name).to_numpy(zero_copy_only=False)
            geoms = shapely.from_wkb(wkb, on_invalid="ignore")
            yield fids, geoms, batch.drop_columns([geometry_name, fid_name])


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
        # GDAL reads as many records as the header says: a header that lies
        # loses parcels or invents missing ones, so the file is damaged.
        raise ImportRefused(
            _(
                "The .dbf header announces %(header)s records but the file holds "
                "%(actual)s."
            ),
            header=table.header_count,
            actual=table.file_count,
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
    prj = source.sidecars.get(".prj")
    declared = prj.read_text(encoding="utf-8", errors="replace") if prj else ""
    first = np.arange(min(PREVIEW_ROWS, records))
    shown = _dbf_fields(table, first, choice.encoding, problems=[])
    return Layer(
        source=source,
        field_names=[f.name for f in table.fields],
        declared_wkt=declared or info["crs_wkt"],
        encoding=choice.encoding,
        encoding_source=choice.source,
        records=records,
        preview=_preview(first + 1, shown, [f.name for f in table.fields]),
        problems=problems,
        table=table,
    )


def _shapefile_chunks(source: Source, table: DbfTable, encoding: str):
    records = max(table.file_count, shx_record_count(source.sidecars[".shx"]))
    seen = np.zeros(records, dtype=bool)
    for fids, geoms, _batch in _arrow_batches(source, columns=[]):
        in_range = (fids >= 0) & (fids < records)
        indexes, geoms = fids[in_range], geoms[in_range]
        fresh = ~seen[indexes]
        indexes, geoms = indexes[fresh], geoms[fresh]
        seen[indexes] = True
        if len(indexes):
            yield _dbf_chunk(table, indexes, geoms, encoding)
    # Records GDAL skipped (flagged deleted, or beyond the shorter file).
    unread = np.flatnonzero(~seen)
    for start in range(0, len(unread), BATCH_SIZE):
        indexes = unread[start : start + BATCH_SIZE]
        none = np.full(len(indexes), None, dtype=object)
        yield _dbf_chunk(table, indexes, none, encoding)


def _dbf_chunk(table: DbfTable, indexes, geoms, encoding: str) -> Chunk:
    problems: list[Problem] = []
    fields = _dbf_fields(table, indexes, encoding, problems=problems)
    return Chunk(indexes + 1, geoms, fields, problems)


def _dbf_fields(table: DbfTable, indexes, encoding: str, *, problems) -> "Fields":
    """Return the fields of records ``indexes`` (None beyond the .dbf).

    Numbers are parsed now, since one that is not a number is the row's problem
    whether or not it is mapped; text is decoded when asked for (the encoding
    was checked on every value already), so fields no mapping uses cost nothing.
    """
    held = indexes < table.file_count
    fields = Fields(held, encoding)
    for dbf_field in table.fields:
        values = table.raw[dbf_field.name][indexes[held]]
        if dbf_field.kind in "NF":
            parsed = _numbers(values, dbf_field.name, indexes[held] + 1, problems)
            fields.decoded[dbf_field.name] = fields.padded(parsed)
        else:
            fields.raw[dbf_field.name] = _without_nul(
                values, dbf_field.name, indexes[held] + 1, problems
            )
    return fields


def _without_nul(values: np.ndarray, field_name: str, rows, problems) -> np.ndarray:
    """Return text values with any NUL byte removed, reporting each such row.

    No text column of PostgreSQL holds a NUL; numpy's bytes type already drops
    the trailing ones, so any NUL left is inside the value.
    """
    holding = _inner_nul_rows(values)
    if not len(holding):
        return values
    for index in holding:
        problems.append(
            Problem.of(
                _("The value holds a NUL character (\\0), which cannot be stored."),
                row=int(rows[index]),
                field=field_name,
            )
        )
    cleaned = values.copy()
    cleaned[holding] = [bytes(v).replace(b"\x00", b"") for v in values[holding]]
    return cleaned


def _inner_nul_rows(values: np.ndarray) -> np.ndarray:
    """Return the indexes of values with a NUL before their last other byte.

    Vectorised over the fixed-width bytes (numpy pads short values with NULs,
    which are no part of the value).
    """
    width = values.dtype.itemsize
    if len(values) == 0 or width == 0:
        return np.array([], dtype=np.int64)
    set_bytes = np.ascontiguousarray(values).view(np.uint8).reshape(-1, width) != 0
    end = width - np.argmax(set_bytes[:, ::-1], axis=1)  # after the last set byte
    end[~set_bytes.any(axis=1)] = 0
    return np.flatnonzero(set_bytes.sum(axis=1) < end)


class Fields(Mapping):
    """A chunk's fields by name, text decoded on first use."""

    def __init__(self, held: np.ndarray, encoding: str) -> None:
        self.held, self.encoding = held, encoding
        self.decoded: dict[str, np.ndarray] = {}
        self.raw: dict[str, np.ndarray] = {}

    def padded(self, values: np.ndarray) -> np.ndarray:
        """Return ``values`` of the held records, None for the others."""
        if self.held.all():
            return values
        out = np.full(len(self.held), None, dtype=object)
        out[self.held] = values
        return out

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.decoded:
            raw = self.raw.pop(name)  # KeyError for a name the file lacks
            # Each distinct value decoded once: classes and villages repeat.
            distinct, where = np.unique(raw, return_inverse=True)
            decoded = encodings.decode_column(distinct, self.encoding)
            self.decoded[name] = self.padded(decoded[where.reshape(-1)])
        return self.decoded[name]

    def __iter__(self):
        return iter([*self.decoded, *self.raw])

    def __len__(self) -> int:
        return len(self.decoded) + len(self.raw)


def _read_ogr(source: Source, info: dict) -> Layer:
    with pyogrio.raw.open_arrow(
        source.path, layer=source.layer, return_fids=True, use_pyarrow=True
    ) as (meta, reader):
        geometry_name = meta["geometry_name"] or "wkb_geometry"
        fid_name = meta["fid_column"] or "OGC_FID"
        names = [n for n in reader.schema.names if n not in {geometry_name, fid_name}]
    preview: list[list] = []
    for chunk in _ogr_chunks(source):
        first = slice(0, PREVIEW_ROWS - len(preview))
        preview += _preview(chunk.rows[first], _sliced(chunk.fields, first), names)
        if len(preview) == PREVIEW_ROWS:
            break
    return Layer(
        source=source,
        field_names=names,
        declared_wkt=info["crs_wkt"],
        encoding="utf-8",
        encoding_source="format",
        records=info["count"] if info["count"] >= 0 else None,
        preview=preview,
        problems=[],
    )


def _ogr_chunks(source: Source):
    start = 0
    for _fids, geoms, batch in _arrow_batches(source, columns=None):
        fields = {
            n: np.array(_plain(batch.column(n)), dtype=object)
            for n in batch.schema.names
        }
        rows = np.arange(start + 1, start + len(geoms) + 1)
        start += len(geoms)
        yield Chunk(rows, geoms, fields)


def _plain(column: pa.Array) -> list:
    return column.to_pylist()


def _sliced(fields: dict, part: slice) -> dict:
    return {name: values[part] for name, values in fields.items()}


def _preview(rows, fields: dict, names: list[str]) -> list[list]:
    """Return rows as lists (row number first), in the file's field order.

    Lists, not objects: PostgreSQL's jsonb does not keep the order of keys.
    """
    return [
        [int(row), *(_json(fields[n][i]) for n in names)] for i, row in enumerate(rows)
    ]


def _json(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


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
