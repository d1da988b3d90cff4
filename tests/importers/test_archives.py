"""Uploads are untrusted: hostile archives are refused and leave nothing behind.

Each hostile upload goes through the import core with ``commit=True``; it must be
refused with its own message, the registry must be unchanged, the importer's
private temporary directory must be gone, and nothing may appear next to the
upload or at the path an entry aimed for.
"""

import json
import warnings
import zipfile
from pathlib import Path

import pytest

from importers import archive, pipeline
from importers.errors import ImportRefused
from importers.models import ImportBatch
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    SIX_VALID,
    assert_chinese,
    assert_refused,
    registry_state,
    run_import,
)

pytestmark = pytest.mark.django_db(databases=DATABASES)

SMALL_BOMB = 8 * 1024**2


def listing(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def ratio_of(path: Path, entry: str) -> int:
    info = zipfile.ZipFile(path).getinfo(entry)
    return info.file_size // info.compress_size


HOSTILE = {
    "vrt disguised as shp": (
        corpus.vrt_disguised_as_shp,
        lambda p: f"{p.name}: parcels.shp is not a shapefile (wrong header).",
    ),
    "zip slip": (
        corpus.zip_slip,
        lambda p: f"{p.name} contains the unsafe path “../evil.shp”; refused.",
    ),
    "absolute path": (
        corpus.absolute_path_entry,
        lambda p: f"{p.name} contains the unsafe path “/tmp/evil.shp”; refused.",
    ),
    "backslash": (
        corpus.backslash_entry,
        lambda p: f"{p.name} contains the unsafe path “..\\evil.shp”; refused.",
    ),
    "windows folder": (
        lambda d: corpus.backslash_entry(d, entry="dir\\parcels.shp"),
        lambda p: f"{p.name} contains the unsafe path “dir\\parcels.shp”; refused.",
    ),
    "drive letter": (
        lambda d: corpus.backslash_entry(d, entry="C:evil.shp"),
        lambda p: f"{p.name} contains the unsafe path “C:evil.shp”; refused.",
    ),
    "symlink": (
        corpus.symlink_entry,
        lambda p: f"{p.name} contains a symbolic link “parcels.prj”; refused.",
    ),
    "20,000 entries": (
        corpus.too_many_entries,
        lambda p: f"{p.name} holds 20,004 entries; at most 1,000 are allowed.",
    ),
    "zip bomb, ratio": (
        lambda d: corpus.zip_bomb(d, size=SMALL_BOMB),
        lambda p: (
            f"{p.name}: “parcels.dbf” expands {ratio_of(p, 'parcels.dbf')} "
            "times; at most 100 is allowed (a zip bomb?)."
        ),
    ),
    "not a zip": (
        corpus.not_a_zip,
        lambda p: f"{p.name} is not a valid zip archive.",
    ),
    "bad shp magic": (
        corpus.shp_with_bad_magic,
        lambda p: f"{p.name}: parcels.shp is not a shapefile (wrong header).",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_archive_is_refused_and_leaves_nothing_behind(
    case, corpus_dir, import_tmp, project, surveyor
):
    build, message = HOSTILE[case]
    upload = build(corpus_dir)
    files_before = listing(corpus_dir)
    before = registry_state()

    batch = run_import(upload, project=project, actor=surveyor, commit=True)

    assert_refused(batch, message(upload))
    assert registry_state() == before
    assert listing(corpus_dir) == files_before
    assert list(import_tmp.iterdir()) == []
    assert not Path("/tmp/evil.shp").exists()  # noqa: S108 - the entry's target
    assert list(corpus_dir.parent.rglob("evil.shp")) == []


def test_uploads_are_unpacked_in_a_private_directory_that_is_removed(
    corpus_dir, import_tmp, project, surveyor
):
    upload = corpus.shapefile_zip(corpus_dir)
    files_before = listing(corpus_dir)
    batch = pipeline.new_batch(
        path=upload,
        name=upload.name,
        project=project,
        actor=surveyor,
        options=pipeline.Options(),
    )
    seen = {}

    def look(percent, stage):
        seen[stage] = sorted(
            str(p.relative_to(import_tmp)) for p in import_tmp.rglob("*")
        )

    pipeline.run(batch, commit=True, progress=look)

    (workdir,) = {path.split("/")[0] for path in seen["reading"]}
    assert workdir.startswith("landreg-import-")
    assert f"{workdir}/data/parcels.shp" in seen["reading"]
    assert list(import_tmp.iterdir()) == []
    assert listing(corpus_dir) == files_before


def test_the_ratio_check_holds_for_the_full_size_zip_bomb(
    corpus_dir, import_tmp, project, surveyor
):
    upload = corpus.zip_bomb(corpus_dir)  # 200 MiB of zeros in about 200 kB

    batch = run_import(upload, project=project, actor=surveyor)

    assert_refused(
        batch,
        f"zip_bomb.zip: “parcels.dbf” expands {ratio_of(upload, 'parcels.dbf')} "
        "times; at most 100 is allowed (a zip bomb?).",
    )
    assert list(import_tmp.iterdir()) == []


def test_a_zip_unpacking_beyond_the_limit_is_refused(
    settings, corpus_dir, import_tmp, project, surveyor
):
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "unpacked_bytes": 4 * 1024**2}
    settings.IMPORT_LIMITS["ratio"] = 10_000

    batch = run_import(
        corpus.zip_bomb(corpus_dir, size=SMALL_BOMB), project=project, actor=surveyor
    )

    assert_refused(batch, "zip_bomb.zip unpacks to more than 4,194,304 bytes; refused.")
    assert list(import_tmp.iterdir()) == []


def test_an_upload_beyond_the_size_limit_is_refused(
    settings, corpus_dir, project, surveyor
):
    upload = corpus.shapefile_zip(corpus_dir)
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "upload_bytes": 1000}

    batch = run_import(upload, project=project, actor=surveyor)

    assert_refused(
        batch,
        f"parcels.zip is {upload.stat().st_size:,} bytes; uploads may be at most "
        "1,000 bytes.",
    )


def test_an_empty_upload_is_refused(corpus_dir, project, surveyor):
    upload = corpus_dir / "parcels.zip"
    upload.touch()

    assert_refused(
        run_import(upload, project=project, actor=surveyor), "parcels.zip is empty."
    )


def test_a_shapefile_without_its_index_is_refused_and_not_repaired(
    corpus_dir, project, surveyor
):
    # GDAL's SHAPE_RESTORE_SHX would write a .shx next to the file it opens.
    shp = corpus.shapefile_set(corpus_dir / "loose")
    shp.with_suffix(".shx").unlink()
    upload = corpus._write_zip(
        corpus_dir / "no_shx.zip",
        [(p.name, p.read_bytes()) for p in sorted(shp.parent.iterdir())],
    )
    files_before = listing(corpus_dir)

    batch = run_import(upload, project=project, actor=surveyor)

    assert_refused(batch, "no_shx.zip: layer parcels has no .shx file.")
    assert listing(corpus_dir) == files_before


def test_a_zip_without_survey_data_is_refused(corpus_dir, project, surveyor):
    upload = corpus._write_zip(corpus_dir / "notes.zip", [("readme.txt", b"hello")])

    assert_refused(
        run_import(upload, project=project, actor=surveyor),
        "notes.zip holds no shapefile (.shp with .shx and .dbf), GeoPackage (.gpkg), "
        "GeoJSON (.geojson) or GeoJSONSeq (.geojsonl) layer.",
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "parcels.geojson",
            b'<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>'
            b"CSV:/etc/passwd</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>",
        ),
        (
            "parcels.geojson",
            json.dumps(
                {"type": "gdal_streamed_alg", "command_line": "gdal vector read x"}
            ).encode(),
        ),
    ],
    ids=["vrt as geojson", "gdalg as geojson"],
)
def test_other_gdal_formats_disguised_as_geojson_are_refused(
    name, content, corpus_dir, project, surveyor
):
    upload = corpus_dir / name
    upload.write_bytes(content)

    assert_refused(
        run_import(upload, project=project, actor=surveyor),
        "parcels.geojson is not GeoJSON.",
    )


def test_a_fake_geopackage_is_refused(corpus_dir, project, surveyor):
    upload = corpus_dir / "survey.gpkg"
    upload.write_bytes(b"<OGRVRTDataSource/>" + bytes(100))

    assert_refused(
        run_import(upload, project=project, actor=surveyor),
        "survey.gpkg is not a GeoPackage.",
    )


@pytest.mark.parametrize(
    "entries",
    [
        lambda base: [*base, base[0]],
        lambda base: [*base, ("x", b"1"), ("x/y", b"2")],
    ],
    ids=["duplicate entry", "file and folder of one name"],
)
def test_a_malformed_zip_is_refused_not_crashed(
    entries, corpus_dir, import_tmp, project, surveyor
):
    base = corpus._base_entries(corpus_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        upload = corpus._write_zip(corpus_dir / "odd.zip", entries(base))

    batch = run_import(upload, project=project, actor=surveyor)

    assert batch.state == ImportBatch.State.REFUSED
    assert_chinese(batch.report["refusal"]["zh"], batch.report["refusal"]["en"])
    assert list(import_tmp.iterdir()) == []


def test_a_zip_with_a_corrupt_member_is_refused(corpus_dir, project, surveyor):
    upload = corpus.shapefile_zip(corpus_dir)
    data = bytearray(upload.read_bytes())
    with zipfile.ZipFile(upload) as opened:
        info = opened.getinfo("parcels.dbf")
    # Past the local header (30 bytes, the name, no extra field): the data.
    start = info.header_offset + 30 + len(info.filename)
    data[start : start + 16] = bytes(16)
    upload.write_bytes(bytes(data))

    batch = run_import(upload, project=project, actor=surveyor)

    assert batch.state == ImportBatch.State.REFUSED


def test_a_truncated_dbf_is_refused(corpus_dir, project, surveyor):
    shp = corpus.shapefile_set(corpus_dir / "loose")
    dbf = shp.with_suffix(".dbf")
    dbf.write_bytes(dbf.read_bytes()[:100])
    upload = corpus._write_zip(
        corpus_dir / "truncated.zip",
        [(p.name, p.read_bytes()) for p in sorted(shp.parent.iterdir())],
    )

    batch = run_import(upload, project=project, actor=surveyor)

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["refusal"]["en"].startswith(
        "truncated.zip: the .dbf or .shx file is damaged: "
    )


class TestLayers:
    def test_a_zip_with_several_layers_is_refused_naming_them(
        self, corpus_dir, project, surveyor
    ):
        upload = corpus.shapefile_zip(
            corpus_dir, extra_layers=[("more", corpus.PARCELS[:2])]
        )

        assert_refused(
            run_import(upload, project=project, actor=surveyor),
            "parcels.zip holds several layers (more, parcels); choose one.",
        )

    @pytest.mark.parametrize(("layer", "features"), [("parcels", 6), ("MORE", 2)])
    def test_a_zip_with_several_layers_imports_the_chosen_one(
        self, layer, features, corpus_dir, project, surveyor
    ):
        upload = corpus.shapefile_zip(
            corpus_dir, extra_layers=[("more", corpus.PARCELS[:2])]
        )

        batch = run_import(
            upload, project=project, actor=surveyor, commit=True, source_layer=layer
        )

        assert batch.state == ImportBatch.State.COMMITTED
        assert batch.source_layer == layer.lower()
        assert batch.report["layers"] == ["more", "parcels"]
        assert batch.created == features

    def test_a_layer_not_in_the_zip_is_refused_naming_the_others(
        self, corpus_dir, project, surveyor
    ):
        upload = corpus.shapefile_zip(
            corpus_dir, extra_layers=[("more", corpus.PARCELS[:2])]
        )

        assert_refused(
            run_import(upload, project=project, actor=surveyor, source_layer="nope"),
            "parcels.zip has no layer “nope”; its layers are: more, parcels.",
        )

    def test_two_folders_holding_the_same_layer_name_are_refused(
        self, corpus_dir, project, surveyor
    ):
        with corpus._scratch(corpus_dir) as scratch:
            east = corpus.shapefile_set(scratch / "east", corpus.PARCELS[:3])
            west = corpus.shapefile_set(scratch / "west", corpus.PARCELS[3:])
            entries = corpus._set_entries(east, "east") + corpus._set_entries(
                west, "west"
            )
        upload = corpus._write_zip(corpus_dir / "two.zip", entries)

        batch = run_import(upload, project=project, actor=surveyor)

        assert batch.state == ImportBatch.State.REFUSED

    def test_a_geopackage_with_several_layers_is_refused_naming_them(
        self, corpus_dir, project, surveyor
    ):
        upload = corpus.geopackage(
            corpus_dir, layers={"parcels": corpus.PARCELS, "old": corpus.PARCELS[:2]}
        )

        assert_refused(
            run_import(upload, project=project, actor=surveyor),
            "survey.gpkg holds several layers (old, parcels); choose one.",
        )
        assert_refused(
            run_import(upload, project=project, actor=surveyor, source_layer="new"),
            "survey.gpkg has no layer “new”; its layers are: old, parcels.",
        )

    def test_a_geopackage_with_several_layers_imports_the_chosen_one(
        self, corpus_dir, project, surveyor
    ):
        upload = corpus.geopackage(
            corpus_dir, layers={"parcels": corpus.PARCELS, "old": corpus.PARCELS[:2]}
        )

        batch = run_import(
            upload, project=project, actor=surveyor, commit=True, source_layer="old"
        )

        assert batch.state == ImportBatch.State.COMMITTED
        assert (batch.source_format, batch.source_layer) == ("gpkg", "old")
        assert (batch.encoding, batch.encoding_source) == ("utf-8", "format")
        assert batch.created == 2

    def test_a_zipped_geopackage_is_read(self, corpus_dir, project, surveyor):
        (corpus_dir / "inner").mkdir()
        gpkg = corpus.geopackage(corpus_dir / "inner")
        upload = corpus._write_zip(
            corpus_dir / "survey.zip", [("交付/survey.gpkg", gpkg.read_bytes())]
        )

        batch = run_import(upload, project=project, actor=surveyor)

        assert batch.state == ImportBatch.State.CHECKED
        assert batch.report["counts"] == SIX_VALID

    def test_shapefiles_in_a_subfolder_in_capitals_are_read(
        self, corpus_dir, project, surveyor
    ):
        upload = corpus.shapefile_zip(
            corpus_dir, subfolder="交付/2024", upper_case=True
        )

        batch = run_import(upload, project=project, actor=surveyor, commit=True)

        assert batch.state == ImportBatch.State.COMMITTED
        assert (batch.source_format, batch.source_layer) == ("shapefile", "PARCELS")
        assert batch.created == 6


class TestUnpack:
    """``archive.unpack`` on its own, with small limits."""

    LIMITS = archive.Limits(
        upload_bytes=10 * 1024**2, unpacked_bytes=4 * 1024**2, entries=10, ratio=50
    )

    def unpack(self, upload, tmp_path, limits=LIMITS):
        into = tmp_path / "work"
        into.mkdir()
        return archive.unpack(upload, into, name=upload.name, limits=limits)

    def test_it_extracts_members_in_their_folders(self, corpus_dir, tmp_path):
        upload = corpus.shapefile_zip(corpus_dir, subfolder="a/b")

        target = self.unpack(upload, tmp_path)

        assert sorted(p.name for p in (target / "a" / "b").iterdir()) == [
            "parcels.dbf",
            "parcels.prj",
            "parcels.shp",
            "parcels.shx",
        ]

    def test_a_plain_file_is_copied_under_its_base_name(self, corpus_dir, tmp_path):
        upload = corpus.geojson(corpus_dir)

        into = tmp_path / "work"
        into.mkdir()
        target = archive.unpack(
            upload, into, name="..\\..\\parcels.geojson", limits=self.LIMITS
        )

        assert [p.name for p in target.iterdir()] == ["parcels.geojson"]
        assert (target / "parcels.geojson").read_bytes() == upload.read_bytes()

    def test_the_entry_count_is_limited(self, corpus_dir, tmp_path):
        upload = corpus.too_many_entries(corpus_dir, n=7)

        with pytest.raises(ImportRefused) as refused:
            self.unpack(upload, tmp_path)

        assert refused.value.en == (
            "too_many_entries.zip holds 11 entries; at most 10 are allowed."
        )

    def test_the_declared_total_is_limited(self, corpus_dir, tmp_path):
        limits = archive.Limits(
            upload_bytes=10**7, unpacked_bytes=10**6, entries=10, ratio=10**6
        )
        upload = corpus.zip_bomb(corpus_dir, size=2 * 1024**2)

        with pytest.raises(ImportRefused) as refused:
            self.unpack(upload, tmp_path, limits)

        assert refused.value.en == (
            "zip_bomb.zip unpacks to more than 1,000,000 bytes; refused."
        )
        assert not (tmp_path / "work" / "data" / "parcels.shp").exists()

    def test_a_small_member_may_compress_well(self, corpus_dir, tmp_path):
        # A megabyte of zeros compresses 1000:1, but is no danger.
        upload = corpus.zip_bomb(corpus_dir, size=1024**2)

        target = self.unpack(upload, tmp_path)

        assert (target / "parcels.dbf").stat().st_size == 1024**2

    def test_a_large_member_may_not(self, corpus_dir, tmp_path):
        upload = corpus.zip_bomb(corpus_dir, size=2 * 1024**2)

        with pytest.raises(ImportRefused) as refused:
            self.unpack(upload, tmp_path)

        assert refused.value.en == (
            f"zip_bomb.zip: “parcels.dbf” expands {ratio_of(upload, 'parcels.dbf')} "
            "times; at most 50 is allowed (a zip bomb?)."
        )
