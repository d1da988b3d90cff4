"""Which survey formats are accepted, how each is recognised, and its one layer.

Only four formats are read: zipped ESRI Shapefile sets, GeoPackage, GeoJSON and
GeoJSONSeq. Each is recognised from its own bytes (the .shp magic number, the
SQLite header and ``gpkg_contents``, a leading ``{``), and then opened only with
its own GDAL driver: ``fiona.open(..., enabled_drivers=[...])`` passes the list
to ``GDALOpenEx``, so a ".shp" that is really VRT XML (which would read local
files) is refused instead of opened. Reading afterwards is done with pyogrio,
and the driver it reports is checked again.
"""

import json
import re
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path

import fiona
import pyogrio
from django.db import models
from django.utils.translation import gettext_lazy as _

from importers.errors import ImportRefused

# GDAL restores a missing .shx next to the file when asked; never do that.
pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": "NO"})


class Kind(models.TextChoices):
    """Accepted source formats."""

    SHAPEFILE = "shapefile", "ESRI Shapefile"
    GEOPACKAGE = "gpkg", "GeoPackage"
    GEOJSON = "geojson", "GeoJSON"
    GEOJSONSEQ = "geojsonseq", "GeoJSONSeq"


DRIVERS = {
    Kind.SHAPEFILE: "ESRI Shapefile",
    Kind.GEOPACKAGE: "GPKG",
    Kind.GEOJSON: "GeoJSON",
    Kind.GEOJSONSEQ: "GeoJSONSeq",
}
SEQ_SUFFIXES = {".geojsonl", ".geojsons", ".geojsonseq", ".jsonl", ".ndjson"}
JSON_SUFFIXES = {".geojson", ".json"}
SHP_MAGIC = 9994


@dataclass
class Source:
    """The one layer of an upload that will be imported."""

    kind: Kind
    path: Path  # what GDAL opens
    layer: str
    layers: list[str]
    sidecars: dict[str, Path] = field(default_factory=dict)  # shapefile: ext -> path

    @property
    def driver(self) -> str:
        """Return the only GDAL driver allowed to open this source."""
        return DRIVERS[self.kind]


def locate(directory: Path, *, name: str, layer: str | None = None) -> Source:
    """Find the layer to import among the unpacked files of upload ``name``."""
    files = [p for p in sorted(directory.rglob("*")) if p.is_file()]
    shapefiles = _shapefile_sets(files)
    if shapefiles:
        return _choose_shapefile(shapefiles, name=name, layer=layer)
    candidates = [
        p for p in files if p.suffix.lower() in {".gpkg"} | JSON_SUFFIXES | SEQ_SUFFIXES
    ]
    if len(candidates) > 1:
        raise ImportRefused(
            _("%(file)s holds several datasets (%(names)s); upload one at a time."),
            file=name,
            names=", ".join(p.name for p in candidates),
        )
    for path in candidates:
        suffix = path.suffix.lower()
        if suffix == ".gpkg":
            return _geopackage(path, name=name, layer=layer)
        kind = Kind.GEOJSONSEQ if suffix in SEQ_SUFFIXES else Kind.GEOJSON
        _check_json(path, name=name)
        return Source(kind, path, path.stem, [path.stem])
    raise ImportRefused(
        _(
            "%(file)s holds no shapefile (.shp with .shx and .dbf), GeoPackage "
            "(.gpkg), GeoJSON (.geojson) or GeoJSONSeq (.geojsonl) layer."
        ),
        file=name,
    )


def open_checked(source: Source, *, name: str) -> dict:
    """Open the source with its own driver only; return fiona's view of it.

    Return ``{"crs_wkt": ..., "schema": ..., "count": ...}``. Raise
    ``ImportRefused`` if the driver cannot open it.
    """
    try:
        with fiona.open(
            source.path, layer=source.layer, enabled_drivers=[source.driver]
        ) as collection:
            info = {
                "crs_wkt": collection.crs_wkt or "",
                "schema": collection.schema,
                "count": len(collection),
            }
    except Exception as error:  # fiona raises several unrelated error types
        raise ImportRefused(
            _("%(file)s: the %(format)s driver cannot read layer %(layer)s: %(error)s"),
            file=name,
            format=source.kind.label,
            layer=source.layer,
            # GDAL names the private directory's path; the surveyor knows the file.
            error=str(error).replace(str(source.path), source.path.name)[:300],
        ) from error
    reported = pyogrio.read_info(source.path, layer=source.layer)["driver"]
    if reported != source.driver:
        raise ImportRefused(
            _("%(file)s was recognised as %(driver)s, not %(format)s; refused."),
            file=name,
            driver=reported,
            format=source.kind.label,
        )
    return info


def _shapefile_sets(files: list[Path]) -> dict[str, dict[str, Path]]:
    """Group shapefile members by (case-insensitive) path without extension."""
    sets: dict[str, dict[str, Path]] = {}
    for path in files:
        suffix = path.suffix.lower()
        if suffix in {".shp", ".shx", ".dbf", ".prj", ".cpg"}:
            key = str(path.with_suffix("")).lower()
            sets.setdefault(key, {})[suffix] = path
    return {key: members for key, members in sets.items() if ".shp" in members}


def _choose_shapefile(
    sets: dict[str, dict[str, Path]], *, name: str, layer: str | None
) -> Source:
    names: dict[str, dict[str, Path]] = {}
    for members in sets.values():
        stem = members[".shp"].stem
        if stem.lower() in {n.lower() for n in names}:
            raise ImportRefused(
                _(
                    "%(file)s holds two layers named %(layer)s in different folders; "
                    "keep one."
                ),
                file=name,
                layer=stem,
            )
        names[stem] = members
    if layer is not None:
        matching = [n for n in names if n.lower() == layer.lower()]
        if not matching:
            raise ImportRefused(
                _("%(file)s has no layer “%(layer)s”; its layers are: %(layers)s."),
                file=name,
                layer=layer,
                layers=", ".join(sorted(names)),
            )
        chosen = matching[0]
    elif len(names) > 1:
        raise ImportRefused(
            _("%(file)s holds several layers (%(layers)s); choose one."),
            file=name,
            layers=", ".join(sorted(names)),
        )
    else:
        chosen = next(iter(names))
    members = names[chosen]
    for required in (".shx", ".dbf"):
        if required not in members:
            raise ImportRefused(
                _("%(file)s: layer %(layer)s has no %(part)s file."),
                file=name,
                layer=chosen,
                part=required,
            )
    header = members[".shp"].read_bytes()[:100]
    if len(header) < 100 or struct.unpack(">i", header[:4])[0] != SHP_MAGIC:
        raise ImportRefused(
            _("%(file)s: %(part)s is not a shapefile (wrong header)."),
            file=name,
            part=members[".shp"].name,
        )
    # GDAL looks for sidecars by the .shp's own stem and case; give every member
    # one lower-case name in the private directory.
    canonical = {}
    for suffix, path in members.items():
        target = path.parent / f"{chosen}{suffix}"
        if path != target:
            path.rename(target)
        canonical[suffix] = target
    return Source(
        Kind.SHAPEFILE, canonical[".shp"], chosen, sorted(names), sidecars=canonical
    )


def _geopackage(path: Path, *, name: str, layer: str | None) -> Source:
    with open(path, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise ImportRefused(_("%(file)s is not a GeoPackage."), file=name)
    # Read the table of contents with SQLite itself, read-only: no GDAL driver
    # gets to look at the file before it is known to be a GeoPackage.
    uri = f"file:{path}?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True) as db:
            layers = [
                row[0]
                for row in db.execute(
                    "SELECT table_name FROM gpkg_contents "
                    "WHERE data_type = 'features' ORDER BY table_name"
                )
            ]
    except sqlite3.DatabaseError as error:
        raise ImportRefused(
            _("%(file)s is not a GeoPackage: %(error)s"), file=name, error=str(error)
        ) from error
    if not layers:
        raise ImportRefused(_("%(file)s holds no feature layer."), file=name)
    if layer is None and len(layers) > 1:
        raise ImportRefused(
            _("%(file)s holds several layers (%(layers)s); choose one."),
            file=name,
            layers=", ".join(layers),
        )
    chosen = layer or layers[0]
    if chosen not in layers:
        raise ImportRefused(
            _("%(file)s has no layer “%(layer)s”; its layers are: %(layers)s."),
            file=name,
            layer=chosen,
            layers=", ".join(layers),
        )
    return Source(Kind.GEOPACKAGE, path, chosen, layers)


def _check_json(path: Path, *, name: str) -> None:
    with open(path, "rb") as handle:
        head = handle.read(65536)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\x1e")
    if not text.startswith(b"{"):
        raise ImportRefused(_("%(file)s is not GeoJSON."), file=name)
    # GDAL's GDALG driver runs processing pipelines described in JSON, which can
    # read arbitrary local files: such a document is never GeoJSON.
    if b"gdal_streamed_alg" in head:
        raise ImportRefused(_("%(file)s is not GeoJSON."), file=name)
    if _holds_nul(path):
        raise ImportRefused(
            _(
                "%(file)s holds a NUL character (\\u0000) in its text, which GDAL "
                "would silently cut short; remove it and upload the file again."
            ),
            file=name,
        )
    if path.suffix.lower() in JSON_SUFFIXES and len(head) < 65536:
        try:
            json.loads(head.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ImportRefused(
                _("%(file)s is not valid UTF-8 JSON: %(error)s"),
                file=name,
                error=str(error)[:200],
            ) from error


# A JSON escape of NUL: ``\u0000`` after an even number of backslashes (an odd
# number escapes the backslash itself), or a raw NUL byte.
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000|\x00")


def _holds_nul(path: Path) -> bool:
    """Return whether the JSON text holds a NUL, read a megabyte at a time.

    GDAL's GeoJSON drivers keep strings as C strings: a code holding a NUL
    would be stored cut short at it, silently.
    """
    overlap = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if _NUL.search(overlap + chunk):
                return True
            overlap = chunk[-16:]
    return False
