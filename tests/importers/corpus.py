"""Build small survey files for the importer tests, deterministically.

Every builder writes into a given directory and returns the path of what it
wrote. Nothing here touches the database or Django: the files are made with
pyogrio (GDAL), shapely, pyproj, :mod:`zipfile` and :mod:`struct`, so the
tests exercise the importer against bytes that real tools produce, plus the
byte-level damage that real tools cannot produce (deleted DBF records, a
``.dbf`` longer than the ``.shp``, undecodable text, hostile zip entries).

The base data is :data:`PARCELS` (six valid parcels) and :data:`BUILDINGS`
(four footprints inside them), in EPSG:4547 near the centre of Guangming.
Source field names follow Chinese surveyors' conventions (``DKBM``, ``QSXZ``,
``MJ``, ``BZ``; ``fields="chinese"`` gives 地块编码, 权属性质, 面积, 备注).
Rows are numbered from 1 in the order of the input list, as in the
importer's report; ``row=3`` is the third record, GDAL FID 2.

Outputs are byte-for-byte reproducible: zip entries carry a fixed time stamp,
the DBF "last update" date is fixed, and GeoPackages are written with
``OGR_CURRENT_DATE`` set.

GDAL behaviour worth knowing when reading these files (GDAL 3.12 through
pyogrio 0.13 and GDAL 3.6 through ``ogrinfo``) is recorded in the docstrings
of the builders that provoke it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import shutil
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
import shapely
import shapely.affinity
from pyproj import CRS, Transformer
from shapely.geometry import LineString, Polygon, box, mapping

__all__ = [
    "BEIJING_1954_GK_114E",
    "BUILDINGS",
    "BUILDING_FIELDS",
    "CGCS2000_GK_114E",
    "CGCS2000_GK_ZONE_38",
    "EXTRA_DBF_PARCEL",
    "GENERATOR_EXTENT",
    "LAND_CLASSES",
    "LOCAL_GRID_WKT",
    "PARCELS",
    "PARCEL_FIELDS",
    "XIAN_1980_GK_114E",
    "absolute_path_entry",
    "backslash_entry",
    "buildings_zip",
    "gbk_with_lying_cpg",
    "gbk_without_cpg",
    "gcj02_offset",
    "generate_gbk_shapefile",
    "geojson",
    "geojsonseq",
    "geopackage",
    "not_a_zip",
    "shapefile_set",
    "shapefile_zip",
    "shift",
    "shp_with_bad_magic",
    "swap_axes",
    "symlink_entry",
    "too_many_entries",
    "utf8_with_cpg",
    "utf8_with_lying_cpg",
    "vrt_disguised_as_shp",
    "with_bad_encoding_value",
    "with_dbf_shp_mismatch",
    "with_declared_area_off",
    "with_deleted_record",
    "with_duplicate_codes",
    "with_empty_geometry",
    "with_internal_overlap",
    "with_invalid_bowtie",
    "with_lines",
    "with_mixed_shape_types",
    "with_null_geometry",
    "with_points",
    "with_unknown_land_class",
    "with_z",
    "zip_bomb",
    "zip_slip",
]

Feature = Mapping[str, Any]
GeometryTransform = Callable[[Any], Any]

# --------------------------------------------------------------------------
# Coordinate reference systems
# --------------------------------------------------------------------------

#: The registry's CRS and the CRS of :data:`PARCELS`.
CGCS2000_GK_114E = "EPSG:4547"
#: The same zone with the zone number 38 prefixed to eastings (x + 38 000 000).
CGCS2000_GK_ZONE_38 = "EPSG:4526"
#: Beijing 1954 / 3-degree Gauss-Kruger CM 114E.
BEIJING_1954_GK_114E = "EPSG:2435"
#: Xian 1980 / 3-degree Gauss-Kruger CM 114E.
XIAN_1980_GK_114E = "EPSG:2383"

#: A local grid known only from its ``.prj``: CGCS2000 transverse Mercator on
#: 114E like EPSG:4547 but with false easting 10 000 m (500 000 - 490 000) and
#: false northing -2 510 000 m, so local x = x4547 - 490 000 and
#: local y = y4547 - 2 510 000 exactly.
LOCAL_GRID_WKT = (
    'PROJCS["Guangming local grid",'
    'GEOGCS["China Geodetic Coordinate System 2000",'
    'DATUM["China_2000",SPHEROID["CGCS2000",6378137,298.257222101]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],'
    'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",114],'
    'PARAMETER["scale_factor",1],PARAMETER["false_easting",10000],'
    'PARAMETER["false_northing",-2510000],UNIT["metre",1]]'
)

# --------------------------------------------------------------------------
# Base data
# --------------------------------------------------------------------------

#: Source land-class values and the registry's codes for them.
LAND_CLASSES = {
    "集体": "collective",
    "农场": "state_farm",
    "未完善征转": "unfinished_expropriation",
}


def _rotated_square(cx: float, cy: float, side: float, degrees: float) -> Polygon:
    """Return a square of ``side`` metres centred on (cx, cy), rotated."""
    square = box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return shapely.affinity.rotate(square, degrees, origin=(cx, cy))


def _parcel(
    code: str, land_class_zh: str, owner_note: str, geometry: Polygon
) -> dict[str, Any]:
    """Return a parcel dict whose declared area is its planar area."""
    return {
        "code": code,
        "land_class_zh": land_class_zh,
        "declared_area": round(geometry.area, 2),
        "owner_note": owner_note,
        "geometry": geometry,
    }


#: Six valid parcels in EPSG:4547. GM-T-0001 and GM-T-0002 share an edge
#: (touching is not overlapping); the others are apart. GM-T-0004 is rotated
#: by 30 degrees. 王喆 uses a character that is in GBK but not in GB2312.
PARCELS: list[dict[str, Any]] = [
    _parcel(
        "GM-T-0001",
        "集体",
        "原村民 张三 / 红坳村",
        box(492100.0, 2517200.0, 492160.0, 2517260.0),
    ),
    _parcel(
        "GM-T-0002",
        "集体",
        "原村民 王喆 / 红坳村",
        box(492160.0, 2517200.0, 492240.0, 2517250.0),
    ),
    _parcel(
        "GM-T-0003",
        "农场",
        "原农场职工 李四 / 光明农场",
        box(492600.0, 2517600.0, 492645.0, 2517670.0),
    ),
    _parcel(
        "GM-T-0004",
        "农场",
        "归侨侨眷 陈六（印尼归侨）/ 光明农场",
        _rotated_square(492900.0, 2518000.0, 50.0, 30.0),
    ),
    _parcel(
        "GM-T-0005",
        "未完善征转",
        "原村民 黄五 / 公明街道 塘家村",
        box(493300.0, 2518300.0, 493372.5, 2518355.0),
    ),
    _parcel(
        "GM-T-0006",
        "未完善征转",
        "外来市民 赵七 / 凤凰街道",
        box(493700.0, 2518700.0, 493740.0, 2518780.0),
    ),
]


def _building(
    code: str,
    parcel_code: str,
    floors: int,
    legality_zh: str,
    owner_group_zh: str,
    geometry: Polygon,
) -> dict[str, Any]:
    """Return a building dict whose floor area is footprint times floors."""
    return {
        "code": code,
        "parcel_code": parcel_code,
        "floors": floors,
        "floor_area": round(geometry.area * floors, 2),
        "legality_zh": legality_zh,
        "owner_group_zh": owner_group_zh,
        "geometry": geometry,
    }


#: Four footprints, each inside the parcel it names.
BUILDINGS: list[dict[str, Any]] = [
    _building(
        "GM-T-0001-J01",
        "GM-T-0001",
        3,
        "合法",
        "原村民",
        box(492110.0, 2517210.0, 492122.0, 2517220.0),
    ),
    _building(
        "GM-T-0002-J01",
        "GM-T-0002",
        5,
        "历史遗留",
        "原村民",
        box(492180.0, 2517215.0, 492195.0, 2517230.0),
    ),
    _building(
        "GM-T-0003-J01",
        "GM-T-0003",
        2,
        "0962违建",
        "原农场职工",
        box(492610.0, 2517610.0, 492628.0, 2517622.0),
    ),
    _building(
        "GM-T-0004-J01",
        "GM-T-0004",
        1,
        "未知",
        "归侨侨眷",
        _rotated_square(492900.0, 2518000.0, 10.0, 30.0),
    ),
]

#: Source field names of the parcel layer, by convention. The Chinese names
#: are 8 bytes in GBK but 12 in UTF-8: with ``encoding="UTF-8"`` GDAL cuts
#: them to 10 bytes mid-character (地块编 plus one stray byte) and pyogrio
#: can no longer read the file.
PARCEL_FIELDS: dict[str, dict[str, str]] = {
    "pinyin": {
        "code": "DKBM",
        "land_class_zh": "QSXZ",
        "declared_area": "MJ",
        "owner_note": "BZ",
    },
    "chinese": {
        "code": "地块编码",
        "land_class_zh": "权属性质",
        "declared_area": "面积",
        "owner_note": "备注",
    },
}

#: Source field names of the building layer, by convention. 建筑物编码 is
#: exactly 10 bytes in GBK, the DBF limit.
BUILDING_FIELDS: dict[str, dict[str, str]] = {
    "pinyin": {
        "code": "JZWBM",
        "parcel_code": "DKBM",
        "floors": "CS",
        "floor_area": "JZMJ",
        "legality_zh": "HFX",
        "owner_group_zh": "QLR",
    },
    "chinese": {
        "code": "建筑物编码",
        "parcel_code": "地块编码",
        "floors": "层数",
        "floor_area": "建筑面积",
        "legality_zh": "合法性",
        "owner_group_zh": "权利人",
    },
}

_FLOAT_KEYS = frozenset({"declared_area", "floor_area"})
_INT_KEYS = frozenset({"floors"})

# Fixed time stamps, so that outputs are reproducible.
_ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)
_DBF_DATE = bytes((2024 - 1900, 1, 1))
_GPKG_DATE = "2024-01-01T00:00:00Z"

_SHAPEFILE_SUFFIXES = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_SHP_MAGIC = 9994  # 0x0000270A, big-endian

# --------------------------------------------------------------------------
# Geometry transforms (for the ``transform=`` option)
# --------------------------------------------------------------------------


def swap_axes(geometry: Any) -> Any:
    """Return ``geometry`` with x and y exchanged (a "swapped axes" file)."""
    return shapely.transform(geometry, lambda coords: coords[:, ::-1])


def shift(dx: float, dy: float = 0.0) -> GeometryTransform:
    """Return a transform translating geometries by (dx, dy).

    ``shift(38_000_000)`` on EPSG:4547 output makes an extra zone prefix;
    ``shift(-38_000_000)`` on EPSG:4526 output makes a missing one.
    """

    def _shift(geometry: Any) -> Any:
        return shapely.affinity.translate(geometry, dx, dy)

    return _shift


# GCJ-02 forward transform (the published algorithm; Krasovsky ellipsoid).
# Written out here rather than imported from ``spatial.gcj02`` so that the
# corpus does not share code with what it tests.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 shift (dlon, dlat) in degrees at WGS84 lon/lat."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y
    dlat += 0.2 * np.sqrt(np.abs(x)) + common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y
    dlon += 0.1 * np.sqrt(np.abs(x)) + common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2 / 3
    radlat = lat / 180.0 * pi
    magic = 1.0 - _GCJ_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1 - _GCJ_EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrtmagic * np.cos(radlat) * pi)
    return dlon, dlat


def gcj02_offset(crs: str = "EPSG:4326") -> GeometryTransform:
    """Return a transform that applies the GCJ-02 offset to ``crs`` geometries.

    The data is taken to lon/lat, shifted as AMap would show it (about 600 m
    east-south-east in Guangming) and brought back to ``crs``. Use the same
    ``crs`` as the builder's: ``shapefile_zip(d, crs="EPSG:4547",
    transform=gcj02_offset("EPSG:4547"))``.
    """
    target = _crs(crs)
    geographic = target.is_geographic

    def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dlon, dlat = _gcj_delta(lon, lat)
        return lon + dlon, lat + dlat

    def _transform(geometry: Any) -> Any:
        if geographic:
            return shapely.transform(geometry, _offset, interleaved=False)
        to_lonlat = _transformer(crs, "EPSG:4326")
        from_lonlat = _transformer("EPSG:4326", crs)

        def _projected(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
            return from_lonlat.transform(*_offset(*to_lonlat.transform(x, y)))

        return shapely.transform(geometry, _projected, interleaved=False)

    return _transform


# --------------------------------------------------------------------------
# Internals: CRS, fields, geometry
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _crs(crs: str) -> CRS:
    """Return the pyproj CRS for an authority code or WKT string."""
    return CRS.from_user_input(crs)


@functools.lru_cache(maxsize=32)
def _transformer(source: str, target: str) -> Transformer:
    """Return an always-xy transformer between two CRS given as strings."""
    return Transformer.from_crs(_crs(source), _crs(target), always_xy=True)


def _kind(features: Sequence[Feature], kind: str | None) -> str:
    """Return "parcels" or "buildings", inferring it from the features."""
    if kind is not None:
        if kind not in ("parcels", "buildings"):
            raise ValueError(f"kind must be 'parcels' or 'buildings', not {kind!r}")
        return kind
    if features and "parcel_code" in features[0]:
        return "buildings"
    return "parcels"


def _field_names(kind: str, fields: str | Mapping[str, str]) -> dict[str, str]:
    """Return {feature key: source field name} for a convention or mapping."""
    if isinstance(fields, str):
        table = PARCEL_FIELDS if kind == "parcels" else BUILDING_FIELDS
        try:
            return dict(table[fields])
        except KeyError:
            raise ValueError(
                f"fields must be one of {sorted(table)} or a mapping"
            ) from None
    return dict(fields)


def _field_arrays(
    features: Sequence[Feature], names: Mapping[str, str]
) -> tuple[list[np.ndarray], list[str], list[np.ndarray | None]]:
    """Return pyogrio field data, names and null masks for ``features``."""
    data: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    for key in names:
        values = [feature.get(key) for feature in features]
        mask = np.array([value is None for value in values], dtype=bool)
        if key in _FLOAT_KEYS:
            array = np.array(
                [np.nan if v is None else float(v) for v in values], dtype="float64"
            )
        elif key in _INT_KEYS:
            array = np.array([0 if v is None else int(v) for v in values], "int32")
        else:
            array = np.array(values, dtype=object)
        data.append(array)
        masks.append(mask if mask.any() and key in _INT_KEYS else None)
    return data, list(names.values()), masks


def _geometries(
    features: Sequence[Feature], crs: str, transform: GeometryTransform | None
) -> np.ndarray:
    """Return the features' geometries in ``crs``, transformed, as an array."""
    geoms = np.empty(len(features), dtype=object)
    geoms[:] = [feature.get("geometry") for feature in features]
    if _crs(crs) != _crs(CGCS2000_GK_114E):
        transformer = _transformer(CGCS2000_GK_114E, crs)
        if shapely.has_z(geoms).any():
            geoms = shapely.transform(
                geoms,
                lambda x, y, z: (*transformer.transform(x, y), z),
                include_z=True,
                interleaved=False,
            )
        else:
            geoms = shapely.transform(geoms, transformer.transform, interleaved=False)
    if transform is not None:
        geoms = np.array(
            [None if g is None else transform(g) for g in geoms], dtype=object
        )
    return geoms


def _geometry_type(geoms: np.ndarray) -> str:
    """Return the OGR layer geometry type for a shapefile of ``geoms``."""
    present = [g for g in geoms if g is not None and not g.is_empty]
    names = {g.geom_type.removeprefix("Multi") for g in present} or {"Polygon"}
    if len(names) > 1:
        raise ValueError(f"a shapefile holds one geometry type, not {sorted(names)}")
    name = names.pop()
    if any(g.has_z for g in present):
        name += " Z"
    return name


def _esri_wkt(crs: str) -> str:
    """Return the ESRI WKT1 of ``crs``, as an ESRI ``.prj`` holds it."""
    return _crs(crs).to_wkt("WKT1_ESRI")


# --------------------------------------------------------------------------
# Internals: shapefile and DBF bytes
# --------------------------------------------------------------------------


def _siblings(shp: Path) -> dict[str, Path]:
    """Return the member files of the shapefile set of ``shp``, by suffix."""
    return {suffix: shp.with_suffix(suffix) for suffix in _SHAPEFILE_SUFFIXES}


def _dbf_layout(data: bytes) -> tuple[int, int, int, list[tuple[int, int, str]]]:
    """Return (records, header length, record length, fields) of a DBF.

    Each field is (offset in the record, width, type letter); offset 0 of a
    record is the deletion flag.
    """
    records, header_length, record_length = struct.unpack_from("<IHH", data, 4)
    fields = []
    offset = 1
    position = 32
    while data[position] != 0x0D:
        letter = chr(data[position + 11])
        width = data[position + 16]
        fields.append((offset, width, letter))
        offset += width
        position += 32
    return records, header_length, record_length, fields


def _record_start(data: bytes, row: int) -> int:
    """Return the byte offset of DBF record ``row`` (1-based)."""
    records, header_length, record_length, _ = _dbf_layout(data)
    if not 1 <= row <= records:
        raise ValueError(f"row {row} is not in 1..{records}")
    return header_length + (row - 1) * record_length


def _read_shp_records(data: bytes) -> list[bytes]:
    """Return the record contents (without record headers) of a ``.shp``."""
    records = []
    position = 100
    while position + 8 <= len(data):
        _, words = struct.unpack_from(">ii", data, position)
        records.append(data[position + 8 : position + 8 + 2 * words])
        position += 8 + 2 * words
    return records


def _write_shp_records(shp: Path, records: Sequence[bytes]) -> None:
    """Rewrite ``.shp`` and ``.shx`` with ``records``, keeping the headers."""
    header = bytearray(shp.read_bytes()[:100])
    body = bytearray()
    index = bytearray()
    for number, content in enumerate(records, start=1):
        index += struct.pack(">ii", (100 + len(body)) // 2, len(content) // 2)
        body += struct.pack(">ii", number, len(content) // 2) + content
    shx_header = bytearray(header)
    struct.pack_into(">i", header, 24, (100 + len(body)) // 2)
    struct.pack_into(">i", shx_header, 24, (100 + len(index)) // 2)
    shp.write_bytes(bytes(header + body))
    shp.with_suffix(".shx").write_bytes(bytes(shx_header + index))


def _replace_shp_record(shp: Path, row: int, content: bytes) -> None:
    """Replace the shape of record ``row`` (1-based) by raw ``content``."""
    records = _read_shp_records(shp.read_bytes())
    records[row - 1] = content
    _write_shp_records(shp, records)


def _patch_dbf(shp: Path, patch: Callable[[bytearray], None]) -> None:
    """Apply ``patch`` to the bytes of the ``.dbf`` next to ``shp``."""
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    patch(data)
    dbf.write_bytes(bytes(data))


def _dbf_value(value: Any, width: int, letter: str, encoding: str) -> bytes:
    """Return ``value`` formatted as a DBF field of ``width`` bytes."""
    if value is None:
        return b" " * width
    if letter in "NF":
        if isinstance(value, float):
            text = f"{value:.{max(0, min(15, width - 2))}f}"[:width]
        else:
            text = str(value)
        return text.rjust(width).encode("ascii")
    raw = str(value).encode(encoding)[:width]
    return raw.ljust(width, b" ")


# --------------------------------------------------------------------------
# Internals: zips
# --------------------------------------------------------------------------


def _zip_info(
    name: str, *, compress_type: int = zipfile.ZIP_DEFLATED
) -> zipfile.ZipInfo:
    """Return a ZipInfo with a fixed date and regular-file Unix permissions."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME)
    info.compress_type = compress_type
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def _write_zip(
    path: Path, entries: Sequence[tuple[str | zipfile.ZipInfo, bytes]]
) -> Path:
    """Write ``entries`` (name or ZipInfo, content) to the zip at ``path``."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries:
            info = _zip_info(name) if isinstance(name, str) else name
            archive.writestr(info, content)
    return path


def _arcname(path: Path, subfolder: str | None, upper_case: bool) -> str:
    """Return the zip entry name of a member file."""
    name = path.name.upper() if upper_case else path.name
    return f"{subfolder.strip('/')}/{name}" if subfolder else name


def _set_entries(
    shp: Path, subfolder: str | None = None, upper_case: bool = False
) -> list[tuple[str, bytes]]:
    """Return (entry name, bytes) for each existing member of a shapefile set."""
    return [
        (_arcname(member, subfolder, upper_case), member.read_bytes())
        for member in _siblings(shp).values()
        if member.exists()
    ]


@contextlib.contextmanager
def _scratch(directory: Path) -> Iterator[Path]:
    """Yield a private temporary directory inside ``directory``."""
    with tempfile.TemporaryDirectory(dir=directory, prefix=".corpus-") as name:
        yield Path(name)


# --------------------------------------------------------------------------
# Shapefiles
# --------------------------------------------------------------------------


def shapefile_set(
    directory: Path,
    features: Sequence[Feature] = PARCELS,
    *,
    name: str = "parcels",
    kind: str | None = None,
    fields: str | Mapping[str, str] = "pinyin",
    crs: str = CGCS2000_GK_114E,
    encoding: str = "GBK",
    cpg: str | None = None,
    prj: bool | str = True,
    ldid: int | None = None,
    transform: GeometryTransform | None = None,
    geometry_type: str | None = None,
) -> Path:
    """Write loose shapefile files ``name``.shp/.shx/.dbf[/.prj][/.cpg].

    ``features`` are parcel or building dicts (``kind`` is inferred from a
    ``parcel_code`` key); their geometries (EPSG:4547) are transformed to
    ``crs`` and then by ``transform``. Text is written in ``encoding`` by
    GDAL; the ``.cpg`` GDAL writes is removed unless ``cpg`` is given, in
    which case exactly that text is written (it may lie). ``prj`` is True
    for the ESRI WKT of ``crs``, False for none, or the literal ``.prj``
    text. ``ldid`` sets the DBF language driver byte (GDAL writes 0;
    0x4D, code page 936, makes GDAL decode GBK by itself). Returns the
    ``.shp`` path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    kind = _kind(features, kind)
    names = _field_names(kind, fields)
    shp = directory / f"{name}.shp"
    for member in _siblings(shp).values():
        member.unlink(missing_ok=True)
    geoms = _geometries(features, crs, transform)
    data, field_names, masks = _field_arrays(features, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "'crs' was not provided"
        pyogrio.raw.write(
            str(shp),
            shapely.to_wkb(geoms),
            data,
            field_names,
            field_mask=masks,
            layer=name,
            driver="ESRI Shapefile",
            geometry_type=geometry_type or _geometry_type(geoms),
            encoding=encoding,
        )
    siblings = _siblings(shp)
    siblings[".cpg"].unlink(missing_ok=True)
    if cpg is not None:
        siblings[".cpg"].write_bytes(cpg.encode("ascii"))
    if prj is True:
        siblings[".prj"].write_text(_esri_wkt(crs), encoding="ascii")
    elif isinstance(prj, str):
        siblings[".prj"].write_text(prj, encoding="utf-8")

    def _stamp(dbf: bytearray) -> None:
        dbf[1:4] = _DBF_DATE
        if ldid is not None:
            dbf[29] = ldid

    _patch_dbf(shp, _stamp)
    return shp


def _shapefile_zip(
    directory: Path,
    features: Sequence[Feature],
    *,
    name: str,
    zip_name: str | None,
    subfolder: str | None,
    upper_case: bool,
    extra_layers: Sequence[tuple[str, Sequence[Feature]]],
    patch: Callable[[Path], None] | None = None,
    **options: Any,
) -> Path:
    """Write one or more shapefile sets, optionally patch the first, zip them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (zip_name or f"{name}.zip")
    with _scratch(directory) as scratch:
        shp = shapefile_set(scratch, features, name=name, **options)
        if patch is not None:
            patch(shp)
        entries = _set_entries(shp, subfolder, upper_case)
        for extra_name, extra_features in extra_layers:
            extra_options = {k: v for k, v in options.items() if k != "kind"}
            extra = shapefile_set(
                scratch, extra_features, name=extra_name, **extra_options
            )
            entries += _set_entries(extra, subfolder, upper_case)
        return _write_zip(target, entries)


def shapefile_zip(
    directory: Path,
    *,
    name: str = "parcels",
    parcels: Sequence[Feature] = PARCELS,
    crs: str = CGCS2000_GK_114E,
    encoding: str = "GBK",
    cpg: str | None = None,
    prj: bool | str = True,
    subfolder: str | None = None,
    upper_case: bool = False,
    extra_layers: Sequence[tuple[str, Sequence[Feature]]] = (),
    transform: GeometryTransform | None = None,
    fields: str | Mapping[str, str] = "pinyin",
    ldid: int | None = None,
    zip_name: str | None = None,
    kind: str | None = None,
    geometry_type: str | None = None,
) -> Path:
    """Write a zipped shapefile set of ``parcels`` and return the zip path.

    The set is ``name``.shp/.shx/.dbf, a ``.prj`` (ESRI WKT of ``crs``)
    unless ``prj=False``, and a ``.cpg`` only when ``cpg`` is given; text is
    in ``encoding`` (GBK by default, no ``.cpg``: the common Chinese case).
    ``crs`` is any pyproj input (``"EPSG:4526"``, :data:`LOCAL_GRID_WKT`...);
    coordinates are transformed from EPSG:4547 and then by ``transform``.
    Entries go under ``subfolder/`` if given, and are upper-cased
    (``PARCELS.SHP``) with ``upper_case``. ``extra_layers`` is a sequence of
    (name, features) written as further sets in the same zip with the same
    options. ``fields`` is "pinyin", "chinese" or {key: field name} (keys
    left out are not written, e.g. no land class). ``ldid`` and
    ``geometry_type`` are as for :func:`shapefile_set`; ``kind`` forces
    "parcels" or "buildings" fields. The zip is ``zip_name`` (default
    ``name + ".zip"``) in ``directory``.
    """
    return _shapefile_zip(
        directory,
        parcels,
        name=name,
        zip_name=zip_name,
        subfolder=subfolder,
        upper_case=upper_case,
        extra_layers=extra_layers,
        kind=kind,
        fields=fields,
        crs=crs,
        encoding=encoding,
        cpg=cpg,
        prj=prj,
        ldid=ldid,
        transform=transform,
        geometry_type=geometry_type,
    )


def buildings_zip(
    directory: Path,
    *,
    name: str = "buildings",
    buildings: Sequence[Feature] = BUILDINGS,
    **options: Any,
) -> Path:
    """Write a zipped shapefile set of building footprints (``BUILDINGS``).

    Fields are JZWBM, DKBM, CS, JZMJ, HFX, QLR (or their Chinese names with
    ``fields="chinese"``); every other option is as for :func:`shapefile_zip`.
    """
    return shapefile_zip(
        directory, name=name, parcels=buildings, kind="buildings", **options
    )


# --------------------------------------------------------------------------
# Bad shapefiles (each a zip derived from the base parcels)
# --------------------------------------------------------------------------


def _copy(parcels: Sequence[Feature]) -> list[dict[str, Any]]:
    """Return shallow copies of the parcel dicts, safe to modify."""
    return [dict(parcel) for parcel in parcels]


def _variant(
    directory: Path,
    zip_name: str,
    parcels: Sequence[Feature],
    options: dict[str, Any],
    patch: Callable[[Path], None] | None = None,
) -> Path:
    """Build a variant zip from ``parcels`` with :func:`shapefile_zip` options."""
    options.setdefault("zip_name", zip_name)
    extra_layers = options.pop("extra_layers", ())
    subfolder = options.pop("subfolder", None)
    upper_case = options.pop("upper_case", False)
    name = options.pop("name", "parcels")
    options.setdefault("crs", CGCS2000_GK_114E)
    options.setdefault("encoding", "GBK")
    return _shapefile_zip(
        directory,
        parcels,
        name=name,
        zip_name=options.pop("zip_name"),
        subfolder=subfolder,
        upper_case=upper_case,
        extra_layers=extra_layers,
        patch=patch,
        **options,
    )


def with_points(
    directory: Path, *, parcels: Sequence[Feature] = PARCELS, **options: Any
) -> Path:
    """Write a Point shapefile: each parcel as its centroid, same attributes.

    Shapefiles hold one geometry type, so the whole layer is points; see
    :func:`with_mixed_shape_types` for one point among polygons.
    """
    points = _copy(parcels)
    for parcel in points:
        parcel["geometry"] = parcel["geometry"].centroid
    return _variant(directory, "with_points.zip", points, options)


def with_lines(
    directory: Path, *, parcels: Sequence[Feature] = PARCELS, **options: Any
) -> Path:
    """Write a LineString shapefile: each parcel as its boundary line."""
    lines = _copy(parcels)
    for parcel in lines:
        parcel["geometry"] = LineString(parcel["geometry"].exterior.coords)
    return _variant(directory, "with_lines.zip", lines, options)


def with_mixed_shape_types(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 2,
    **options: Any,
) -> Path:
    """Write a Polygon shapefile in which record ``row`` is a Point shape.

    The record's shape is patched to shape type 1 (its centroid), which the
    format forbids but files in the wild contain. GDAL reports the layer as
    Polygon and returns that feature as a Point.
    """
    centroid = _geometries(
        [{"geometry": parcels[row - 1]["geometry"].centroid}],
        options.get("crs", CGCS2000_GK_114E),
        options.get("transform"),
    )[0]
    content = struct.pack("<idd", 1, centroid.x, centroid.y)
    return _variant(
        directory,
        "with_mixed_shape_types.zip",
        parcels,
        options,
        lambda shp: _replace_shp_record(shp, row, content),
    )


def with_null_geometry(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 3,
    **options: Any,
) -> Path:
    """Write the parcels with record ``row`` a null shape (shape type 0)."""
    changed = _copy(parcels)
    changed[row - 1]["geometry"] = None
    return _variant(directory, "with_null_geometry.zip", changed, options)


def with_empty_geometry(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 3,
    **options: Any,
) -> Path:
    """Write the parcels with record ``row`` an empty polygon shape.

    GDAL writes an empty polygon as a null shape, so the record is patched
    to shape type 5 (Polygon) with zero parts and zero points. GDAL reads
    that back as a null geometry, not an empty one: only a reader of the
    raw ``.shp`` can tell it from :func:`with_null_geometry`. GeoPackage and
    GeoJSON express empties natively (pass ``shapely.Polygon()`` as a
    geometry to those builders).
    """
    content = struct.pack("<i4d2i", 5, 0.0, 0.0, 0.0, 0.0, 0, 0)
    return _variant(
        directory,
        "with_empty_geometry.zip",
        parcels,
        options,
        lambda shp: _replace_shp_record(shp, row, content),
    )


def with_invalid_bowtie(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 3,
    **options: Any,
) -> Path:
    """Write the parcels with record ``row`` a self-intersecting bowtie.

    The bowtie spans the parcel's bounding box, crossing at its centre;
    shapely calls it "Self-intersection". Its declared area is unchanged.
    """
    changed = _copy(parcels)
    minx, miny, maxx, maxy = changed[row - 1]["geometry"].bounds
    changed[row - 1]["geometry"] = Polygon(
        [(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy), (minx, miny)]
    )
    return _variant(directory, "with_invalid_bowtie.zip", changed, options)


def with_duplicate_codes(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 5,
    duplicate_of: int = 2,
    **options: Any,
) -> Path:
    """Write the parcels with record ``row`` carrying the code of ``duplicate_of``.

    By default GM-T-0005's geometry is labelled GM-T-0002 (rows 2 and 5).
    """
    changed = _copy(parcels)
    changed[row - 1]["code"] = changed[duplicate_of - 1]["code"]
    return _variant(directory, "with_duplicate_codes.zip", changed, options)


def with_internal_overlap(
    directory: Path, *, parcels: Sequence[Feature] = PARCELS, **options: Any
) -> Path:
    """Write the parcels with GM-T-0002 grown 2 m west over GM-T-0001.

    The two overlap by exactly 100 m² (2 m by 50 m); GM-T-0002's declared
    area is its new area (4100 m²), so the overlap is the only fault.
    """
    changed = _copy(parcels)
    minx, miny, maxx, maxy = changed[1]["geometry"].bounds
    grown = box(minx - 2.0, miny, maxx, maxy)
    changed[1]["geometry"] = grown
    changed[1]["declared_area"] = round(grown.area, 2)
    return _variant(directory, "with_internal_overlap.zip", changed, options)


def with_z(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    z: float = 12.5,
    **options: Any,
) -> Path:
    """Write a PolygonZ shapefile; parcel i has elevation ``z + i`` metres."""
    changed = _copy(parcels)
    for number, parcel in enumerate(changed):
        parcel["geometry"] = shapely.force_3d(parcel["geometry"], z + number)
    return _variant(directory, "with_z.zip", changed, options)


def with_deleted_record(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 3,
    **options: Any,
) -> Path:
    """Write the parcels with DBF record ``row`` flagged deleted (``*``).

    The ``.shp`` still holds the shape. GDAL skips the record when iterating
    (pyogrio returns one row fewer) while its feature count still includes
    it; the importer must count the records itself.
    """

    def _delete(dbf: bytearray) -> None:
        dbf[_record_start(dbf, row)] = ord("*")

    return _variant(
        directory,
        "with_deleted_record.zip",
        parcels,
        options,
        lambda shp: _patch_dbf(shp, _delete),
    )


#: The record :func:`with_dbf_shp_mismatch` appends to the ``.dbf``.
EXTRA_DBF_PARCEL: dict[str, Any] = {
    "code": "GM-T-0007",
    "land_class_zh": "集体",
    "declared_area": 1234.5,
    "owner_note": "原村民 孙八 / 红坳村（仅在DBF中）",
}


def with_dbf_shp_mismatch(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    dbf_delta: int = 1,
    **options: Any,
) -> Path:
    """Write the parcels with a ``.dbf`` holding ``dbf_delta`` records more.

    With ``dbf_delta=1`` (the default) :data:`EXTRA_DBF_PARCEL` is appended
    to the ``.dbf`` (header count updated), so it has one record more than
    ``.shp``/``.shx``; with a negative delta the last records are cut from
    the ``.dbf`` instead. GDAL says nothing either way: it reads as many
    features as the ``.shp`` has and ignores surplus DBF records, and with a
    short ``.dbf`` its feature count is the ``.shp`` count while iteration
    stops at the last DBF record (6 counted, 5 read).
    """
    encoding = options.get("encoding", "GBK")
    kind = _kind(parcels, options.get("kind"))
    names = _field_names(kind, options.get("fields", "pinyin"))

    def _mismatch(dbf: bytearray) -> None:
        records, header_length, record_length, layout = _dbf_layout(dbf)
        end = header_length + records * record_length
        if dbf_delta >= 0:
            record = b" " + b"".join(
                _dbf_value(EXTRA_DBF_PARCEL.get(key), width, letter, encoding)
                for key, (_, width, letter) in zip(names, layout, strict=True)
            )
            body = bytes(dbf[header_length:end]) + record * dbf_delta
        else:
            body = bytes(dbf[header_length : end + dbf_delta * record_length])
        count = records + dbf_delta
        dbf[header_length:] = body + b"\x1a"
        struct.pack_into("<I", dbf, 4, count)

    return _variant(
        directory,
        "with_dbf_shp_mismatch.zip",
        parcels,
        options,
        lambda shp: _patch_dbf(shp, _mismatch),
    )


def with_bad_encoding_value(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 4,
    bad_bytes: bytes = b"\xff\xfe",
    **options: Any,
) -> Path:
    """Write the parcels with undecodable bytes in the ``BZ`` of record ``row``.

    The value is the row's note followed by ``bad_bytes`` (0xFF is never
    valid in GB18030, GBK or UTF-8), patched into the DBF directly. GDAL,
    asked to recode from GBK or GB18030, silently drops the bad bytes and
    returns the clean note, with a RuntimeWarning it emits only once per
    process; strict decoding of the raw bytes is the only way to notice.
    """
    changed = _copy(parcels)
    placeholder = b"?" * len(bad_bytes)
    changed[row - 1]["owner_note"] = (
        changed[row - 1]["owner_note"] + placeholder.decode()
    )
    names = list(_field_names("parcels", options.get("fields", "pinyin")))
    column = names.index("owner_note")

    def _corrupt(dbf: bytearray) -> None:
        _, _, _, layout = _dbf_layout(dbf)
        offset, width, _ = layout[column]
        start = _record_start(dbf, row) + offset
        value = bytes(dbf[start : start + width])
        at = value.rindex(placeholder)
        dbf[start + at : start + at + len(bad_bytes)] = bad_bytes

    return _variant(
        directory,
        "with_bad_encoding_value.zip",
        changed,
        options,
        lambda shp: _patch_dbf(shp, _corrupt),
    )


def with_unknown_land_class(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 6,
    value: str = "国有划拨",
    **options: Any,
) -> Path:
    """Write the parcels with the land class of record ``row`` set to ``value``."""
    changed = _copy(parcels)
    changed[row - 1]["land_class_zh"] = value
    return _variant(directory, "with_unknown_land_class.zip", changed, options)


def with_declared_area_off(
    directory: Path,
    *,
    parcels: Sequence[Feature] = PARCELS,
    row: int = 1,
    factor: float = 1.2,
    **options: Any,
) -> Path:
    """Write the parcels with the declared area of record ``row`` times ``factor``.

    By default GM-T-0001 declares 4320.0 m² for 3600 m² (20 % too much).
    """
    changed = _copy(parcels)
    changed[row - 1]["declared_area"] = round(
        changed[row - 1]["declared_area"] * factor, 2
    )
    return _variant(directory, "with_declared_area_off.zip", changed, options)


def utf8_with_cpg(
    directory: Path, *, parcels: Sequence[Feature] = PARCELS, **options: Any
) -> Path:
    """Write the parcels in UTF-8 with a ``.cpg`` saying ``UTF-8``."""
    options.update(encoding="UTF-8", cpg="UTF-8")
    return _variant(directory, "utf8_with_cpg.zip", parcels, options)


def gbk_without_cpg(
    directory: Path, *, parcels: Sequence[Feature] = PARCELS, **options: Any
) -> Path:
    """Write the parcels in GBK without a ``.cpg`` (DBF language byte 0).

    GDAL, left to itself, decodes this as ISO-8859-1 and returns mojibake
    (``Ô\xad´åÃñ ÕÅÈý``) without any warning.
    """
    options.update(encoding="GBK", cpg=None)
    return _variant(directory, "gbk_without_cpg.zip", parcels, options)


def gbk_with_lying_cpg(
    directory: Path, *, parcels: Sequence[Feature] = PARCELS, **options: Any
) -> Path:
    """Write the parcels in GBK with a ``.cpg`` that says ``UTF-8``.

    GDAL trusts the ``.cpg`` and hands the GBK bytes on as UTF-8; pyogrio
    then fails the whole read with ``UnicodeDecodeError``.
    """
    options.update(encoding="GBK", cpg="UTF-8")
    return _variant(directory, "gbk_with_lying_cpg.zip", parcels, options)


def utf8_with_lying_cpg(
    directory: Path, *, parcels: Sequence[Feature] = PARCELS, **options: Any
) -> Path:
    """Write the parcels in UTF-8 with a ``.cpg`` that says ``GBK``.

    GDAL trusts the ``.cpg`` and recodes the UTF-8 bytes as GBK: silent
    mojibake (原村民 becomes 鍘熸潙姘), a few bytes dropped.
    """
    options.update(encoding="UTF-8", cpg="GBK")
    return _variant(directory, "utf8_with_lying_cpg.zip", parcels, options)


# --------------------------------------------------------------------------
# Hostile archives
# --------------------------------------------------------------------------


def _base_entries(directory: Path, **options: Any) -> list[tuple[str, bytes]]:
    """Return the entries of the base parcel set, for embedding in a zip."""
    with _scratch(Path(directory)) as scratch:
        return _set_entries(shapefile_set(scratch, PARCELS, **options))


def vrt_disguised_as_shp(
    directory: Path,
    *,
    target: str = "/etc/passwd",
    zip_name: str = "vrt_disguised_as_shp.zip",
) -> Path:
    """Write a zip whose ``parcels.shp`` is OGR VRT XML reading ``target``.

    The XML is a ``<OGRVRTDataSource>`` with a CSV source (no headers), so
    a reader that lets GDAL pick any driver lists the lines of ``target`` as
    features: pyogrio (GDAL 3.12) opening ``/vsizip/...zip/parcels.shp``
    returns one feature per line of ``/etc/passwd``. The ``.shx``, ``.dbf``
    and ``.prj`` of the base set are included so that the set looks
    complete.
    """
    layer = Path(target).stem
    xml = (
        "<OGRVRTDataSource>\n"
        '  <OGRVRTLayer name="parcels">\n'
        f"    <SrcDataSource>CSV:{target}</SrcDataSource>\n"
        f"    <SrcLayer>{layer}</SrcLayer>\n"
        '    <OpenOptions><OOI key="HEADERS">NO</OOI></OpenOptions>\n'
        "  </OGRVRTLayer>\n"
        "</OGRVRTDataSource>\n"
    )
    entries = [
        (name, content)
        for name, content in _base_entries(directory)
        if not name.endswith(".shp")
    ]
    return _write_zip(
        Path(directory) / zip_name, [("parcels.shp", xml.encode()), *entries]
    )


def _with_entry(directory: Path, zip_name: str, entry: str) -> Path:
    """Write the base set plus ``entry`` (a copy of its ``.shp``) to a zip."""
    entries = _base_entries(directory)
    shp = next(content for name, content in entries if name.endswith(".shp"))
    return _write_zip(Path(directory) / zip_name, [*entries, (entry, shp)])


def zip_slip(directory: Path, *, entry: str = "../evil.shp") -> Path:
    """Write the base set plus an entry escaping upwards (``../evil.shp``)."""
    return _with_entry(directory, "zip_slip.zip", entry)


def absolute_path_entry(
    directory: Path,
    *,
    entry: str = "/tmp/evil.shp",  # noqa: S108 - the hostile entry name itself
) -> Path:
    """Write the base set plus an entry with an absolute path."""
    return _with_entry(directory, "absolute_path_entry.zip", entry)


def backslash_entry(directory: Path, *, entry: str = "..\\evil.shp") -> Path:
    """Write the base set plus an entry with a backslash (``..\\evil.shp``).

    ``entry="dir\\parcels.shp"`` gives the harmless-looking Windows form.
    """
    return _with_entry(directory, "backslash_entry.zip", entry)


def symlink_entry(
    directory: Path,
    *,
    link_name: str = "parcels.prj",
    target: str = "/etc/passwd",
) -> Path:
    """Write the base set with ``link_name`` a Unix symlink to ``target``.

    The entry has ``external_attr = 0o120777 << 16`` (``S_IFLNK``) and the
    link target as its content, as ``zip --symlinks`` stores it; extracting
    with ``zipfile`` writes a regular file holding the target path, while
    ``unzip`` creates the link.
    """
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (name, content)
        for name, content in _base_entries(directory)
        if name != link_name
    ]
    link = _zip_info(link_name, compress_type=zipfile.ZIP_STORED)
    link.external_attr = 0o120777 << 16
    entries.append((link, target.encode()))
    return _write_zip(Path(directory) / "symlink_entry.zip", entries)


def too_many_entries(directory: Path, n: int = 20_000) -> Path:
    """Write the base set plus ``n`` empty entries ``junk/00000.txt``..."""
    path = Path(directory) / "too_many_entries.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in _base_entries(directory):
            archive.writestr(_zip_info(name), content)
        for number in range(n):
            info = _zip_info(f"junk/{number:05d}.txt", compress_type=zipfile.ZIP_STORED)
            archive.writestr(info, b"")
    return path


def zip_bomb(
    directory: Path,
    *,
    size: int = 200 * 1024**2,
    entry: str = "parcels.dbf",
    chunk: int = 1024**2,
) -> Path:
    """Write a zip whose ``entry`` is ``size`` bytes of zeros, deflate level 9.

    The other members of the base set are there too, so only the sizes are
    wrong. 200 MiB compresses to about 200 kB (ratio about 1000:1); the entry
    is streamed in ``chunk``-byte pieces, so memory stays low.
    """
    path = Path(directory) / "zip_bomb.zip"
    zeros = bytes(chunk)
    with zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9
    ) as archive:
        for name, content in _base_entries(directory):
            if name != entry:
                archive.writestr(_zip_info(name), content)
        info = _zip_info(entry)
        info.file_size = size
        with archive.open(info, "w") as out:
            remaining = size
            while remaining > 0:
                out.write(zeros[: min(chunk, remaining)])
                remaining -= chunk
    return path


def not_a_zip(directory: Path, *, size: int = 4096, seed: int = 0) -> Path:
    """Write ``size`` random bytes (never starting ``PK``) as ``not_a_zip.zip``."""
    data = bytearray(random.Random(seed).randbytes(size))
    if data[:2] == b"PK":
        data[0] = 0
    path = Path(directory) / "not_a_zip.zip"
    path.write_bytes(bytes(data))
    return path


def shp_with_bad_magic(directory: Path, *, magic: bytes = b"\xde\xad\xbe\xef") -> Path:
    """Write a valid zip whose ``.shp`` starts with ``magic``, not 0x0000270A."""
    if struct.unpack(">i", magic)[0] == _SHP_MAGIC:
        raise ValueError("that is the shapefile magic number")
    entries = _base_entries(directory)
    patched = [
        (name, magic + content[4:] if name.endswith(".shp") else content)
        for name, content in entries
    ]
    return _write_zip(Path(directory) / "shp_with_bad_magic.zip", patched)


# --------------------------------------------------------------------------
# GeoPackage, GeoJSON, GeoJSONSeq
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _gdal_config(**options: str) -> Iterator[None]:
    """Set GDAL configuration options for the duration of a block."""
    previous = {key: pyogrio.get_gdal_config_option(key) for key in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(previous)


def geopackage(
    directory: Path,
    *,
    layers: Mapping[str, Sequence[Feature]] | None = None,
    crs: str = CGCS2000_GK_114E,
    name: str = "survey",
    fields: str | Mapping[str, str] = "pinyin",
    transform: GeometryTransform | None = None,
) -> Path:
    """Write a GeoPackage ``name``.gpkg with one table per entry of ``layers``.

    ``layers`` defaults to ``{"parcels": PARCELS}``; a layer whose features
    have a ``parcel_code`` gets the building fields. Text is UTF-8 (as the
    format requires); empty geometries (``shapely.Polygon()``) are stored as
    GeoPackage empties. Timestamps are fixed, so the file is reproducible.
    """
    layers = {"parcels": PARCELS} if layers is None else layers
    path = Path(directory) / f"{name}.gpkg"
    path.unlink(missing_ok=True)
    wkt = _crs(crs).to_wkt()
    with _gdal_config(OGR_CURRENT_DATE=_GPKG_DATE):
        for layer, features in layers.items():
            geoms = _geometries(features, crs, transform)
            names = _field_names(_kind(features, None), fields)
            data, field_names, masks = _field_arrays(features, names)
            pyogrio.raw.write(
                str(path),
                shapely.to_wkb(geoms),
                data,
                field_names,
                field_mask=masks,
                layer=layer,
                driver="GPKG",
                geometry_type=_geometry_type(geoms),
                crs=wkt,
            )
    return path


def _crs_member(crs: str) -> dict[str, Any]:
    """Return the legacy GeoJSON ``crs`` member naming an EPSG code."""
    authority = _crs(crs).to_authority()
    if authority is None or authority[0] != "EPSG":
        raise ValueError(f"GeoJSON can only name EPSG codes, not {crs!r}")
    return {
        "type": "name",
        "properties": {"name": f"urn:ogc:def:crs:EPSG::{authority[1]}"},
    }


def _geojson_features(
    features: Sequence[Feature],
    crs: str,
    fields: str | Mapping[str, str],
    transform: GeometryTransform | None,
) -> list[dict[str, Any]]:
    """Return GeoJSON Feature objects for ``features`` in ``crs``."""
    names = _field_names(_kind(features, None), fields)
    geoms = _geometries(features, crs, transform)
    return [
        {
            "type": "Feature",
            "properties": {name: feature.get(key) for key, name in names.items()},
            "geometry": None if geometry is None else mapping(geometry),
        }
        for feature, geometry in zip(features, geoms, strict=True)
    ]


def geojson(
    directory: Path,
    *,
    crs: str = "EPSG:4326",
    parcels: Sequence[Feature] = PARCELS,
    name: str = "parcels",
    fields: str | Mapping[str, str] = "pinyin",
    transform: GeometryTransform | None = None,
    crs_member: bool | None = None,
) -> Path:
    """Write an RFC 7946 FeatureCollection ``name``.geojson (UTF-8).

    Coordinates are lon/lat for EPSG:4326 (the default) and easting/northing
    or lon/lat for any other ``crs``, which is then named in a legacy
    ``"crs"`` member (``urn:ogc:def:crs:EPSG::4547``). ``crs_member`` forces
    the member on (True) or off (False: coordinates in a CRS nobody names).
    """
    include = crs_member if crs_member is not None else _crs(crs) != _crs("EPSG:4326")
    collection: dict[str, Any] = {"type": "FeatureCollection", "name": name}
    if include:
        collection["crs"] = _crs_member(crs)
    collection["features"] = _geojson_features(parcels, crs, fields, transform)
    path = Path(directory) / f"{name}.geojson"
    path.write_text(
        json.dumps(collection, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return path


def geojsonseq(
    directory: Path,
    *,
    rs: bool = False,
    crs: str = "EPSG:4326",
    parcels: Sequence[Feature] = PARCELS,
    name: str = "parcels",
    fields: str | Mapping[str, str] = "pinyin",
    transform: GeometryTransform | None = None,
) -> Path:
    """Write one GeoJSON Feature per line, lon/lat, UTF-8.

    With ``rs=True`` each line starts with the RS character (0x1E) as in
    RFC 8142 and the file is ``name``.geojsons; otherwise it is newline-
    delimited ``name``.geojsonl. GeoJSONSeq has no CRS member, so any other
    ``crs`` writes coordinates nobody declares.
    """
    prefix = "\x1e" if rs else ""
    lines = [
        prefix + json.dumps(feature, ensure_ascii=False) + "\n"
        for feature in _geojson_features(parcels, crs, fields, transform)
    ]
    path = Path(directory) / f"{name}.{'geojsons' if rs else 'geojsonl'}"
    path.write_text("".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# Large synthetic shapefiles
# --------------------------------------------------------------------------

#: Centre and side (metres) of the square the synthetic parcels fill; it
#: lies inside the Guangming outline.
GENERATOR_CENTRE = (492811.0, 2517961.0)
GENERATOR_EXTENT = 8000.0

_GROUPS = np.array(["原村民", "原农场职工", "归侨侨眷", "外来市民", "集体或企业"])
_SURNAMES = np.array(["张", "王", "李", "陈", "黄", "赵", "周", "吴", "喆", "刘"])
_VILLAGES = np.array(["红坳村", "塘家村", "白花村", "楼村", "玉律村", "光明农场"])
_CLASS_VALUES = np.array(list(LAND_CLASSES))


def _synthetic_batch(
    start: int, stop: int, side: int, cell: float, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return WKB geometries and field arrays for synthetic parcels."""
    rng = np.random.default_rng([seed, start])
    index = np.arange(start, stop)
    count = len(index)
    x0 = GENERATOR_CENTRE[0] - side * cell / 2 + (index % side) * cell
    y0 = GENERATOR_CENTRE[1] - side * cell / 2 + (index // side) * cell
    margin = 0.1 * cell
    jitter = rng.uniform(0.0, 0.15 * cell, size=(count, 4, 2))
    # Corners SW, NW, NE, SE (clockwise, as shapefile outer rings are),
    # each pulled inwards by the margin and its own jitter: the quads stay
    # convex and inside their cells, so they never overlap.
    low = margin + jitter
    corners = np.empty((count, 5, 2))
    corners[:, 0, 0] = x0 + low[:, 0, 0]
    corners[:, 0, 1] = y0 + low[:, 0, 1]
    corners[:, 1, 0] = x0 + low[:, 1, 0]
    corners[:, 1, 1] = y0 + cell - low[:, 1, 1]
    corners[:, 2, 0] = x0 + cell - low[:, 2, 0]
    corners[:, 2, 1] = y0 + cell - low[:, 2, 1]
    corners[:, 3, 0] = x0 + cell - low[:, 3, 0]
    corners[:, 3, 1] = y0 + low[:, 3, 1]
    corners[:, 4] = corners[:, 0]
    polygons = shapely.polygons(corners)
    codes = np.char.add("GM-B-", np.char.zfill((index + 1).astype(str), 7))
    classes = _CLASS_VALUES[rng.integers(0, len(_CLASS_VALUES), count)]
    notes = np.char.add(
        np.char.add(_GROUPS[rng.integers(0, len(_GROUPS), count)], " "),
        np.char.add(
            np.char.add(_SURNAMES[rng.integers(0, len(_SURNAMES), count)], "某 / "),
            _VILLAGES[rng.integers(0, len(_VILLAGES), count)],
        ),
    )
    areas = np.round(shapely.area(polygons), 2)
    data = [codes.astype(object), classes.astype(object), areas, notes.astype(object)]
    return shapely.to_wkb(polygons), data


def generate_gbk_shapefile(
    path_dir: Path,
    n: int,
    *,
    seed: int = 0,
    name: str = "bench_parcels",
    batch_size: int = 20_000,
    as_zip: bool = True,
    keep_files: bool = False,
    fields: str | Mapping[str, str] = "pinyin",
) -> Path:
    """Write ``n`` synthetic parcels as a GBK shapefile without ``.cpg``.

    Parcels are convex quads, one per cell of a square grid filling an
    8 km square around Guangming's centre (EPSG:4547), never overlapping;
    codes are ``GM-B-0000001``..., classes and owner notes random (but
    reproducible for a given ``seed`` and ``batch_size``), declared area the
    true area rounded to 0.01. Batches of ``batch_size`` are appended with
    pyogrio, so memory stays flat. With ``as_zip`` (the default) the set is
    zipped (streamed from disk) to ``name``.zip and the zip path returned,
    the loose files removed unless ``keep_files``; otherwise the ``.shp``
    path is returned.
    """
    path_dir = Path(path_dir)
    folder = path_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    shp = folder / f"{name}.shp"
    for member in _siblings(shp).values():
        member.unlink(missing_ok=True)
    side = max(1, int(np.ceil(np.sqrt(n))))
    cell = min(GENERATOR_EXTENT / side, 60.0)
    field_names = list(_field_names("parcels", fields).values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            wkb, data = _synthetic_batch(start, stop, side, cell, seed)
            # The .cpg GDAL writes stays until the end: appends read it to
            # know that they must recode to GBK.
            pyogrio.raw.write(
                str(shp),
                wkb,
                data,
                field_names,
                layer=name,
                driver="ESRI Shapefile",
                geometry_type="Polygon",
                encoding="GBK",
                append=start > 0,
            )
    siblings = _siblings(shp)
    siblings[".cpg"].unlink(missing_ok=True)
    siblings[".prj"].write_text(_esri_wkt(CGCS2000_GK_114E), encoding="ascii")
    with siblings[".dbf"].open("r+b") as dbf:
        dbf.seek(1)
        dbf.write(_DBF_DATE)
    if not as_zip:
        return shp
    target = path_dir / f"{name}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for member in siblings.values():
            if not member.exists():
                continue
            info = _zip_info(member.name)
            info.file_size = member.stat().st_size
            with (
                member.open("rb") as source,
                archive.open(info, "w") as out,
            ):
                shutil.copyfileobj(source, out, 1024**2)
    if not keep_files:
        shutil.rmtree(folder)
    return target
