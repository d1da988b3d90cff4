"""Hostile survey files: each is refused with its own message, in bounded work.

The files are built here, byte by byte where real tools would not make them: a
zip whose one member expands to 3 GiB, zips that lie about their sizes or entry
counts, entries that share their bytes, archives inside the archive, encrypted
or Deflate64 members, formats dressed as other formats, a polygon with 100,000
rings, geometry collections nested beyond any parser's depth, attribute values
of 100,000 characters and NUL bytes, and a ``.dbf`` that claims 2^31 records.

Each case goes through the import core with ``commit=True`` and asserts the
exact refusal (English, with a Chinese rendering), that the registry is
unchanged, and where the danger is work, that the refusal came quickly and
without holding much memory. The other hostile archives (zip slip, symlinks,
a ``.shp`` that is VRT XML or has a wrong magic, the 200 MiB bomb) are in
``test_archives.py``.
"""

import json
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Polygon

from importers.models import ImportBatch
from registry.models import Parcel
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    assert_chinese,
    assert_refused,
    registry_state,
    reported,
    run_import,
)

pytestmark = pytest.mark.django_db(databases=DATABASES)

GIB = 1024**3
MIB = 1024**2


# --------------------------------------------------------------------------
# Building hostile zips by hand
# --------------------------------------------------------------------------


def zeros_deflated(size: int, *, block: int = 16 * MIB) -> bytes:
    """Return a raw Deflate stream of ``size`` zero bytes, made in milliseconds.

    One block of zeros is compressed with a full flush (byte-aligned, no
    reference back past its start), so repeating it repeats its output; an
    empty final block ends the stream. 3 GiB come to about 3 MB.
    """
    if size % block:
        raise ValueError("size must be a multiple of the block")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return piece * (size // block) + b"\x03\x00"


def raw_zip(path: Path, members: list[tuple], *, shared: bool = False) -> Path:
    """Write a zip from (name, stored bytes, method, crc, declared size) tuples.

    Sizes and CRCs are written as given, so they may lie. With ``shared`` every
    central-directory entry points at the first member's bytes (the overlapping
    entries of a "better zip bomb").
    """
    body, directory, offsets = bytearray(), bytearray(), []
    for name, data, method, crc, size in members:
        encoded = name.encode()
        offsets.append(len(body))
        body += struct.pack(
            "<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data),
            size, len(encoded), 0,
        )  # fmt: skip
        body += encoded + data
        if shared:
            break
    for number, (name, data, method, crc, size) in enumerate(members):
        encoded = name.encode()
        directory += struct.pack(
            "<4s6H3I5H2I", b"PK\x01\x02", 0x0314, 20, 0, method, 0, 0x21, crc,
            len(data), size, len(encoded), 0, 0, 0, 0, 0o100644 << 16,
            0 if shared else offsets[number],
        )  # fmt: skip
        directory += encoded
    end = struct.pack(
        "<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory),
        len(body), 0,
    )  # fmt: skip
    path.write_bytes(bytes(body + directory + end))
    return path


def base_members(directory: Path, *, leave_out: str = "") -> list[tuple]:
    """Return the base parcel set as stored raw-zip members (honest headers)."""
    return [
        (name, content, zipfile.ZIP_STORED, zlib.crc32(content), len(content))
        for name, content in corpus._base_entries(directory)
        if name != leave_out
    ]


def bomb(directory: Path, *, size: int = 3 * GIB, declared: int | None = None):
    """Write the base set whose ``parcels.dbf`` is ``size`` zeros, deflated.

    ``declared`` is the size the headers give (default: the truth). The CRC is
    left 0: nothing may read the member to its end.
    """
    data = zeros_deflated(size)
    dbf = ("parcels.dbf", data, zipfile.ZIP_DEFLATED, 0, declared or size)
    return raw_zip(
        directory / "bomb.zip", [*base_members(directory, leave_out=dbf[0]), dbf]
    )


def patched_directory(path: Path, entry: str, patch) -> Path:
    """Apply ``patch(data, offset)`` to ``entry``'s central-directory record."""
    data = bytearray(path.read_bytes())
    position = data.index(b"PK\x01\x02")
    while position != -1:
        length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46 : position + 46 + length] == entry.encode():
            patch(data, position)
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))
    return path


class Bounded:
    """Measure one import: wall time and the peak of Python's allocations."""

    def __enter__(self):
        tracemalloc.start()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def refused_quickly(upload, project, surveyor, *, seconds=5.0, peak=64 * MIB):
    """Import ``upload``; assert nothing changed and the work was bounded."""
    before = registry_state()
    with Bounded() as work:
        batch = run_import(upload, project=project, actor=surveyor, commit=True)
    assert registry_state() == before
    assert work.seconds < seconds, work.seconds
    assert work.peak_bytes < peak, work.peak_bytes
    return batch


# --------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------


def test_a_zip_expanding_to_3_gib_is_refused_before_a_byte_is_written(
    corpus_dir, import_tmp, project, surveyor
):
    upload = bomb(corpus_dir)
    assert upload.stat().st_size < 4 * MIB

    batch = refused_quickly(upload, project, surveyor, seconds=2.0)

    compressed = zipfile.ZipFile(upload).getinfo("parcels.dbf").compress_size
    assert_refused(
        batch,
        f"bomb.zip: “parcels.dbf” expands {3 * GIB // compressed} times; at most "
        "100 is allowed (a zip bomb?).",
    )
    assert list(import_tmp.iterdir()) == []


def test_a_bomb_whose_headers_understate_its_size_stops_at_the_stated_size(
    corpus_dir, import_tmp, project, surveyor
):
    # The headers say 1,000,000 bytes, so no ratio check applies; the stream
    # holds 3 GiB. Unpacking stops at the stated size and the CRC refuses it.
    upload = bomb(corpus_dir, declared=1_000_000)

    batch = refused_quickly(upload, project, surveyor, seconds=2.0)

    assert_refused(
        batch,
        "bomb.zip is a damaged zip archive: Bad CRC-32 for file 'parcels.dbf'",
    )
    assert list(import_tmp.iterdir()) == []


def test_many_small_members_are_held_to_the_ratio_as_a_whole(
    corpus_dir, project, surveyor
):
    # 200 members of 1 MiB of zeros: each below the per-member check, 200 MiB
    # from a 300 kB upload together.
    data = zeros_deflated(MIB, block=MIB)
    members = [
        (f"notes/{n:03d}.txt", data, zipfile.ZIP_DEFLATED, 0, MIB) for n in range(200)
    ]
    upload = raw_zip(corpus_dir / "many.zip", [*base_members(corpus_dir), *members])
    listed = zipfile.ZipFile(upload).infolist()
    ratio = sum(e.file_size for e in listed) // sum(e.compress_size for e in listed)

    batch = refused_quickly(upload, project, surveyor)

    assert_refused(
        batch,
        f"many.zip expands {ratio} times as a whole; at most 100 is allowed "
        "(a zip bomb?).",
    )


def test_entries_sharing_their_bytes_are_refused(corpus_dir, project, surveyor):
    # Every central-directory entry points at one member's bytes: each looks
    # small and honest, together they unpack the same data a thousand times.
    content = bytes(MIB // 2)
    members = [
        (f"{n:04d}.dbf", content, zipfile.ZIP_STORED, zlib.crc32(content), MIB // 2)
        for n in range(1000)
    ]
    upload = raw_zip(corpus_dir / "overlap.zip", members, shared=True)

    batch = refused_quickly(upload, project, surveyor)

    assert_refused(
        batch,
        "overlap.zip: the stored bytes of “0000.dbf” overlap another entry's "
        "(a zip bomb?); refused.",
    )


def test_a_20000_entry_zip_is_refused_from_its_end_record(
    corpus_dir, project, surveyor
):
    upload = corpus.too_many_entries(corpus_dir)

    batch = refused_quickly(upload, project, surveyor, seconds=0.5, peak=4 * MIB)

    assert_refused(batch, "too_many_entries.zip holds 20,004 entries; at most 1,000 "
                   "are allowed.")  # fmt: skip


def test_a_zip_hiding_entries_from_its_end_record_is_refused(
    corpus_dir, project, surveyor
):
    upload = corpus.too_many_entries(corpus_dir)
    data = bytearray(upload.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<2H", data, end + 8, 6, 6)  # "6 entries", the CD holds 20,004
    upload.write_bytes(bytes(data))
    directory_bytes = struct.unpack_from("<I", data, end + 12)[0]

    batch = refused_quickly(upload, project, surveyor, seconds=0.5, peak=4 * MIB)

    assert_refused(
        batch,
        f"too_many_entries.zip: its directory of {directory_bytes:,} bytes does not "
        "fit the 6 entries it announces; refused.",
    )


def test_a_zip_inside_the_zip_is_refused_not_unpacked(corpus_dir, project, surveyor):
    inner = corpus.shapefile_zip(corpus_dir)
    upload = corpus._write_zip(
        corpus_dir / "outer.zip", [("交付/inner.zip", inner.read_bytes())]
    )

    batch = refused_quickly(upload, project, surveyor)

    assert_refused(
        batch,
        "outer.zip contains another archive “交付/inner.zip”; unpack it and upload "
        "the survey files themselves.",
    )


def test_an_encrypted_member_is_refused(corpus_dir, project, surveyor):
    upload = corpus.shapefile_zip(corpus_dir)
    patched_directory(
        upload,
        "parcels.dbf",
        lambda data, at: struct.pack_into("<H", data, at + 8, 0x1),
    )

    batch = refused_quickly(upload, project, surveyor)

    assert_refused(
        batch,
        "parcels.zip: “parcels.dbf” is encrypted; upload the archive without a "
        "password.",
    )


def test_a_member_in_a_method_we_cannot_unpack_is_refused(
    corpus_dir, project, surveyor
):
    # Windows' own zipper uses Deflate64 (method 9) for large files.
    upload = corpus.shapefile_zip(corpus_dir)
    patched_directory(
        upload, "parcels.dbf", lambda data, at: struct.pack_into("<H", data, at + 10, 9)
    )

    batch = refused_quickly(upload, project, surveyor)

    assert_refused(
        batch,
        "parcels.zip: “parcels.dbf” is compressed with method 9, which cannot be "
        "unpacked here; zip it again with the usual Deflate method.",
    )


# --------------------------------------------------------------------------
# Formats in disguise
# --------------------------------------------------------------------------


def _sqlite_without_gpkg(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE parcels (code text)")


DISGUISES = {
    "HTML as GeoJSON": (
        "parcels.geojson",
        lambda p, d: p.write_text("<!DOCTYPE html><html><body>登录</body></html>"),
        "parcels.geojson is not GeoJSON.",
    ),
    "HTML as GeoJSONSeq": (
        "parcels.geojsonl",
        lambda p, d: p.write_text("<html>\n<script>alert(1)</script>\n</html>\n"),
        "parcels.geojsonl is not GeoJSON.",
    ),
    "a zip renamed .geojson": (
        "parcels.geojson",
        lambda p, d: p.write_bytes(corpus.shapefile_zip(d).read_bytes()),
        "parcels.geojson is not GeoJSON.",
    ),
    "a zip renamed .gpkg": (
        "survey.gpkg",
        lambda p, d: p.write_bytes(corpus.shapefile_zip(d).read_bytes()),
        "survey.gpkg is not a GeoPackage.",
    ),
    "SQLite that is no GeoPackage": (
        "survey.gpkg",
        lambda p, d: _sqlite_without_gpkg(p),
        "survey.gpkg is not a GeoPackage: no such table: gpkg_contents",
    ),
    "Esri JSON as GeoJSON": (
        "parcels.geojson",
        lambda p, d: p.write_text(
            json.dumps(
                {
                    "geometryType": "esriGeometryPolygon",
                    "features": [{"attributes": {}, "geometry": {"rings": []}}],
                }
            )
        ),
        "parcels.geojson: the GeoJSON driver cannot read layer parcels: Failed to "
        "open dataset (flags=68): parcels.geojson",
    ),
}


@pytest.mark.parametrize("case", DISGUISES)
def test_a_format_in_disguise_is_refused(case, corpus_dir, project, surveyor):
    name, write, message = DISGUISES[case]
    upload = corpus_dir / name
    write(upload, corpus_dir / "made")

    assert_refused(refused_quickly(upload, project, surveyor), message)


def test_a_dbf_that_is_html_is_refused(corpus_dir, project, surveyor):
    def html(shp: Path) -> None:
        shp.with_suffix(".dbf").write_text("<html><body>not a table</body></html>")

    upload = corpus._variant(corpus_dir, "html_dbf.zip", corpus.PARCELS, {}, html)

    assert_refused(
        refused_quickly(upload, project, surveyor),
        "html_dbf.zip: the .dbf or .shx file is damaged: the header is cut short",
    )


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------


def holed(parcel: dict, holes: int) -> Polygon:
    """Return the parcel's square with ``holes`` tiny square holes in a grid."""
    minx, miny, maxx, _maxy = parcel["geometry"].bounds
    side = int(holes**0.5) + 1
    cell = (maxx - minx - 2) / side
    rings = []
    for number in range(holes):
        x = minx + 1 + (number % side) * cell
        y = miny + 1 + (number // side) * cell
        h = cell / 4
        rings.append([(x, y), (x, y + h), (x + h, y + h), (x + h, y), (x, y)])
    return Polygon(parcel["geometry"].exterior.coords, rings)


def with_geometry(directory: Path, row: int, geometry, **options) -> Path:
    parcels = [dict(p) for p in corpus.PARCELS]
    parcels[row - 1]["geometry"] = geometry
    parcels[row - 1]["declared_area"] = round(geometry.area, 2)
    return corpus.shapefile_zip(directory, parcels=parcels, **options)


def test_a_polygon_with_100000_rings_is_refused_on_its_row_quickly(
    corpus_dir, project, surveyor
):
    upload = with_geometry(corpus_dir, 1, holed(corpus.PARCELS[0], 100_000))

    batch = refused_quickly(upload, project, surveyor, seconds=10.0, peak=512 * MIB)

    assert batch.state == ImportBatch.State.REFUSED
    assert (
        1,
        "GM-T-0001",
        "geometry",
        "error",
        "The geometry has 100,001 rings; at most 1,000 are accepted in one feature.",
    ) in reported(batch)
    assert {p[0] for p in reported(batch)} == {1}


def test_a_polygon_with_a_thousand_holes_is_accepted(corpus_dir, project, surveyor):
    upload = with_geometry(corpus_dir, 1, holed(corpus.PARCELS[0], 999))

    batch = run_import(upload, project=project, actor=surveyor, commit=True)

    assert (batch.state, batch.created) == (ImportBatch.State.COMMITTED, 6)
    stored = shapely.from_wkb(bytes(Parcel.objects.get(code="GM-T-0001").geom.wkb))
    assert shapely.get_num_interior_rings(stored.geoms[0]) == 999


def test_a_polygon_with_200000_vertices_is_refused_on_its_row(
    corpus_dir, project, surveyor
):
    square = corpus.PARCELS[0]["geometry"]
    outline = square.exterior.segmentize(square.length / 200_000)

    batch = refused_quickly(
        with_geometry(corpus_dir, 1, Polygon(outline)),
        project,
        surveyor,
        seconds=10.0,
        peak=512 * MIB,
    )

    count = shapely.get_num_coordinates(Polygon(outline))
    assert reported(batch) == [
        (
            1,
            "GM-T-0001",
            "geometry",
            "error",
            f"The geometry has {count:,} vertices; at most 100,000 are accepted in "
            "one feature.",
        )
    ]


def test_a_file_with_too_many_vertices_in_all_is_refused(
    settings, corpus_dir, project, surveyor
):
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "file_vertices": 20}

    batch = refused_quickly(corpus.shapefile_zip(corpus_dir), project, surveyor)

    assert_refused(
        batch,
        "parcels.zip holds more than 20 vertices (30 in its first 6 rows); split "
        "it into files of at most 20.",
    )


def nested_collection(depth: int) -> str:
    """Return GeoJSON text of a triangle inside ``depth`` geometry collections."""
    triangle = '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}'
    return (
        '{"type":"GeometryCollection","geometries":[' * depth
        + triangle
        + ("]}" * depth)
    )


def geojson_with(directory: Path, row: int, member: str, text: str) -> Path:
    """Write the corpus GeoJSON with ``member`` of feature ``row`` set to ``text``."""
    path = corpus.geojson(directory)
    document = json.loads(path.read_text())
    feature = document["features"][row - 1]
    if member == "geometry":
        feature["geometry"] = "@@"
    else:
        feature["properties"][member] = "@@"
    path.write_text(json.dumps(document, ensure_ascii=False).replace('"@@"', text))
    return path


def test_a_nested_geometry_collection_is_refused_on_its_row(
    corpus_dir, project, surveyor
):
    upload = geojson_with(corpus_dir, 3, "geometry", nested_collection(30))

    batch = refused_quickly(upload, project, surveyor)

    assert batch.state == ImportBatch.State.REFUSED
    assert reported(batch) == [
        (
            3,
            "GM-T-0003",
            "geometry",
            "error",
            "The geometry is a GeometryCollection; parcels must be polygons.",
        )
    ]


def test_collections_nested_past_the_parsers_depth_refuse_the_file(
    corpus_dir, project, surveyor
):
    upload = geojson_with(corpus_dir, 3, "geometry", nested_collection(100_000))

    batch = refused_quickly(upload, project, surveyor, peak=256 * MIB)

    assert_refused(
        batch,
        "parcels.geojson: the GeoJSON driver cannot read layer parcels: Failed to "
        "open dataset (flags=68): parcels.geojson",
    )


def test_arrays_nested_past_pythons_recursion_limit_refuse_the_file(
    corpus_dir, project, surveyor
):
    # Small enough (under 64 kB) that the importer parses it with json itself.
    upload = geojson_with(corpus_dir, 2, "BZ", "[" * 20_000 + "]" * 20_000)
    assert upload.stat().st_size < 65536

    batch = refused_quickly(upload, project, surveyor)

    assert_refused(
        batch,
        "parcels.geojson is not valid UTF-8 JSON: maximum recursion depth exceeded "
        "while decoding a JSON array from a unicode string",
    )


# --------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------


def test_a_code_of_100000_characters_is_refused_on_its_row(
    corpus_dir, project, surveyor
):
    upload = geojson_with(corpus_dir, 2, "DKBM", json.dumps("地" * 100_000))

    batch = refused_quickly(upload, project, surveyor)

    assert batch.state == ImportBatch.State.REFUSED
    assert [p[:4] for p in reported(batch)] == [(2, "", "DKBM", "error")]
    assert reported(batch)[0][4] == (
        "The value is 100,000 characters long; at most 40 are stored."
    )


def test_a_huge_unknown_value_is_quoted_short_in_the_report(
    corpus_dir, project, surveyor
):
    upload = geojson_with(corpus_dir, 2, "QSXZ", json.dumps("地" * 100_000))

    batch = refused_quickly(upload, project, surveyor)

    assert reported(batch) == [
        (
            2,
            "GM-T-0002",
            "QSXZ",
            "error",
            f"Unknown land class “{'地' * 40}…”; map it to one of the three.",
        )
    ]


def test_a_huge_value_of_a_field_not_stored_does_not_stop_the_import(
    corpus_dir, project, surveyor
):
    upload = geojson_with(corpus_dir, 2, "BZ", json.dumps("地" * 100_000))

    batch = run_import(upload, project=project, actor=surveyor, commit=True)

    assert (batch.state, batch.created) == (ImportBatch.State.COMMITTED, 6)


@pytest.mark.parametrize(
    ("member", "text"),
    [
        ("DKBM", json.dumps("GM-T\x00-0002")),  # written as GM-T\u0000-0002
        ("BZ", json.dumps("张三\x00李四", ensure_ascii=False)),
    ],
)
def test_a_nul_in_geojson_text_refuses_the_file_not_cut_short(
    corpus_dir, project, surveyor, member, text
):
    # GDAL would keep "GM-T" as the code: the file is refused before it reads.
    upload = geojson_with(corpus_dir, 2, member, text)

    assert_refused(
        refused_quickly(upload, project, surveyor),
        "parcels.geojson holds a NUL character (\\u0000) in its text, which GDAL "
        "would silently cut short; remove it and upload the file again.",
    )


def test_an_escaped_backslash_before_u0000_is_no_nul(corpus_dir, project, surveyor):
    upload = geojson_with(corpus_dir, 2, "BZ", json.dumps("C:\\u0000\\notes"))

    batch = run_import(upload, project=project, actor=surveyor, commit=True)

    assert (batch.state, batch.created) == (ImportBatch.State.COMMITTED, 6)


def test_a_nul_in_a_dbf_value_is_refused_on_its_row(corpus_dir, project, surveyor):
    parcels = [dict(p) for p in corpus.PARCELS]
    parcels[1]["owner_note"] = "张三?李四"

    def nul(shp: Path) -> None:
        dbf = shp.with_suffix(".dbf")
        data = bytearray(dbf.read_bytes())
        data[data.index("张三?".encode("gbk")) + 4] = 0
        dbf.write_bytes(bytes(data))

    upload = corpus._variant(corpus_dir, "nul.zip", parcels, {}, nul)

    batch = refused_quickly(upload, project, surveyor)

    assert reported(batch) == [
        (
            2,
            "GM-T-0002",
            "BZ",
            "error",
            "The value holds a NUL character (\\0), which cannot be stored.",
        )
    ]


def test_a_dbf_claiming_2_31_records_refuses_the_file_naming_the_claim(
    corpus_dir, project, surveyor
):
    def claim(shp: Path) -> None:
        dbf = shp.with_suffix(".dbf")
        data = bytearray(dbf.read_bytes())
        struct.pack_into("<I", data, 4, 2**31)
        dbf.write_bytes(bytes(data))

    upload = corpus._variant(corpus_dir, "claims.zip", corpus.PARCELS, {}, claim)

    batch = refused_quickly(upload, project, surveyor, seconds=2.0, peak=16 * MIB)

    assert_refused(
        batch, "The .dbf header announces 2147483648 records but the file holds 6."
    )


def test_a_dbf_claiming_2_31_records_costs_no_memory(corpus_dir, project, surveyor):
    # Whatever the message, the claim is never believed: nothing is allocated
    # for 2^31 records.
    def claim(shp: Path) -> None:
        dbf = shp.with_suffix(".dbf")
        data = bytearray(dbf.read_bytes())
        struct.pack_into("<I", data, 4, 2**31)
        dbf.write_bytes(bytes(data))

    upload = corpus._variant(corpus_dir, "claims.zip", corpus.PARCELS, {}, claim)

    batch = refused_quickly(upload, project, surveyor, seconds=2.0, peak=16 * MIB)

    assert batch.state == ImportBatch.State.REFUSED
    assert_chinese(batch.report["refusal"]["zh"], batch.report["refusal"]["en"])
