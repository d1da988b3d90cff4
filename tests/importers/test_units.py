"""The importer's own readers and guesses, on their own: DBF tables, mappings."""

import zipfile

import pytest

from importers.dbf import DbfError, read_dbf, shx_record_count
from importers.mapping import FieldMapping, propose, source_key
from tests.importers import corpus


def unzipped(upload, directory):
    with zipfile.ZipFile(upload) as archive:
        archive.extractall(directory)
    return directory


class TestReadDbf:
    def test_it_counts_records_and_keeps_raw_bytes(self, corpus_dir):
        shp = corpus.shapefile_set(corpus_dir)

        table = read_dbf(shp.with_suffix(".dbf"))

        assert [(f.name, f.kind) for f in table.fields] == [
            ("DKBM", "C"),
            ("QSXZ", "C"),
            ("MJ", "N"),
            ("BZ", "C"),
        ]
        assert (table.header_count, table.file_count) == (6, 6)
        assert table.language_driver == 0
        assert list(table.deleted) == [False] * 6
        assert list(table.raw["DKBM"]) == [p["code"].encode() for p in corpus.PARCELS]
        assert list(table.raw["BZ"]) == [
            p["owner_note"].encode("gbk") for p in corpus.PARCELS
        ]
        assert shx_record_count(shp.with_suffix(".shx")) == 6

    def test_it_sees_a_record_flagged_deleted(self, corpus_dir):
        directory = unzipped(corpus.with_deleted_record(corpus_dir), corpus_dir / "x")

        table = read_dbf(directory / "parcels.dbf")

        assert table.file_count == 6
        assert list(table.deleted) == [False, False, True, False, False, False]
        assert table.raw["DKBM"][2] == b"GM-T-0003"

    def test_it_counts_what_the_file_holds_not_what_the_header_says(self, corpus_dir):
        directory = unzipped(corpus.with_dbf_shp_mismatch(corpus_dir), corpus_dir / "x")

        table = read_dbf(directory / "parcels.dbf")

        assert (table.header_count, table.file_count) == (7, 7)
        assert table.raw["DKBM"][6] == b"GM-T-0007"
        assert shx_record_count(directory / "parcels.shx") == 6

    def test_it_reads_the_language_byte(self, corpus_dir):
        shp = corpus.shapefile_set(corpus_dir, ldid=0x4D)

        assert read_dbf(shp.with_suffix(".dbf")).language_driver == 0x4D

    def test_it_decodes_chinese_field_names(self, corpus_dir):
        shp = corpus.shapefile_set(corpus_dir, fields="chinese")

        table = read_dbf(shp.with_suffix(".dbf"))

        assert [f.name for f in table.fields] == [
            "地块编码",
            "权属性质",
            "面积",
            "备注",
        ]

    def test_it_refuses_what_is_not_a_dbf(self, tmp_path):
        path = tmp_path / "parcels.dbf"
        path.write_bytes(b"PK\x03\x04" + bytes(40))

        with pytest.raises(DbfError, match="version byte 0x50 is not dBASE"):
            read_dbf(path)

    def test_it_refuses_a_dbf_cut_inside_its_header(self, corpus_dir):
        dbf = corpus.shapefile_set(corpus_dir).with_suffix(".dbf")
        dbf.write_bytes(dbf.read_bytes()[:100])

        with pytest.raises(DbfError):
            read_dbf(dbf)


class TestPropose:
    @pytest.mark.parametrize(
        ("names", "expected"),
        [
            (
                ["DKBM", "QSXZ", "MJ", "BZ"],
                {"code": "DKBM", "land_class": "QSXZ", "declared_area": "MJ"},
            ),
            (
                ["dkbm", "qsxz", "mj"],
                {"code": "dkbm", "land_class": "qsxz", "declared_area": "mj"},
            ),
            (
                ["ZDDM", "TDLX", "ZDMJ"],
                {"code": "ZDDM", "land_class": "TDLX", "declared_area": "ZDMJ"},
            ),
            (
                ["地块编码", "权属性质", "面积", "备注"],
                {"code": "地块编码", "land_class": "权属性质", "declared_area": "面积"},
            ),
            (
                ["宗地代码", "土地性质", "宗地面积"],
                {
                    "code": "宗地代码",
                    "land_class": "土地性质",
                    "declared_area": "宗地面积",
                },
            ),
            (
                ["parcel_code", "land_class", "declared_area"],
                {
                    "code": "parcel_code",
                    "land_class": "land_class",
                    "declared_area": "declared_area",
                },
            ),
            (
                ["Parcel-ID", "Class", "Area"],
                {"code": "Parcel-ID", "land_class": "Class", "declared_area": "Area"},
            ),
            (["DKBM", "BZ"], {"code": "DKBM"}),
        ],
        ids=[
            "pinyin",
            "lower case",
            "zongdi",
            "chinese",
            "chinese zongdi",
            "english",
            "english, separators",
            "no class",
        ],
    )
    def test_parcel_fields_are_recognised(self, names, expected):
        mapping = propose(names, "parcels")

        assert mapping.layer == "parcels"
        assert mapping.fields == expected

    @pytest.mark.parametrize("fields", ["pinyin", "chinese"])
    def test_building_fields_are_recognised(self, fields):
        names = corpus.BUILDING_FIELDS[fields]

        mapping = propose(list(names.values()), "buildings")

        assert mapping.fields == {
            "code": names["code"],
            "parcel_code": names["parcel_code"],
            "floors": names["floors"],
            "floor_area": names["floor_area"],
            "legality": names["legality_zh"],
            "owner_group": names["owner_group_zh"],
        }

    def test_one_field_serves_one_target(self):
        # 地块编码 names the building's parcel, not the building itself.
        mapping = propose(["地块编码", "权利人"], "buildings")

        assert mapping.fields == {"parcel_code": "地块编码", "owner_group": "权利人"}

    def test_files_with_the_same_fields_share_a_source_key(self):
        assert source_key(["DKBM", "qsxz", "MJ"]) == source_key(["mj", "QSXZ", "dkbm"])
        assert source_key(["DKBM"]) != source_key(["DKBM", "MJ"])


class TestValues:
    @pytest.mark.parametrize(
        ("value", "land_class"),
        [
            ("集体", "collective"),
            (" 原农村集体土地 ", "collective"),
            ("农场", "state_farm"),
            ("原光明农场国有用地", "state_farm"),
            ("未完善征转", "unfinished_expropriation"),
            ("未完善征转手续土地", "unfinished_expropriation"),
            ("collective", "collective"),
            ("国有划拨", None),
            (None, None),
        ],
    )
    def test_land_class_values(self, value, land_class):
        assert FieldMapping().value_for("land_class", value) == land_class

    def test_explicit_values_come_first(self):
        mapping = FieldMapping(values={"land_class": {"集体": "state_farm"}})

        assert mapping.value_for("land_class", "集体") == "state_farm"
        assert mapping.value_for("land_class", "农场") == "state_farm"
