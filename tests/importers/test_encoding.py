"""Text encoding: the right one is chosen, shown, and never garbles a name.

Order of evidence: the surveyor's choice, the ``.cpg``, the DBF language byte,
strict UTF-8, then GB18030. A declaration the bytes contradict is not trusted.
"""

import numpy as np
import pytest

from importers import encoding
from importers.errors import ImportRefused
from importers.models import ImportBatch
from registry.models import Parcel
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    SIX_VALID,
    assert_chinese,
    assert_refused,
    preview,
    registry_state,
    reported,
    run_import,
)

NOTES = [parcel["owner_note"] for parcel in corpus.PARCELS]
CLASSES = [parcel["land_class_zh"] for parcel in corpus.PARCELS]


@pytest.mark.django_db(databases=DATABASES)
class TestShapefileText:
    def test_gbk_without_cpg_is_read_as_gb18030_with_chinese_intact(
        self, corpus_dir, project, surveyor
    ):
        batch = run_import(
            corpus.gbk_without_cpg(corpus_dir), project=project, actor=surveyor
        )

        assert batch.state == ImportBatch.State.CHECKED
        assert batch.report["counts"] == SIX_VALID
        assert (batch.encoding, batch.encoding_source) == ("gb18030", "gb18030")
        assert batch.report["encoding"] == {"name": "gb18030", "source": "gb18030"}
        rows = preview(batch)
        assert [rows[row]["BZ"] for row in range(1, 7)] == NOTES
        # 王喆: 喆 is in GBK but not in GB2312.
        assert rows[2]["BZ"] == "原村民 王喆 / 红坳村"

    def test_gbk_committed_keeps_its_land_classes(self, corpus_dir, project, surveyor):
        batch = run_import(
            corpus.gbk_without_cpg(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
        )

        assert batch.created == 6
        assert dict(Parcel.objects.values_list("code", "land_class")) == {
            parcel["code"]: corpus.LAND_CLASSES[parcel["land_class_zh"]]
            for parcel in corpus.PARCELS
        }

    def test_utf8_with_a_true_cpg_is_read_as_utf8(self, corpus_dir, project, surveyor):
        batch = run_import(
            corpus.utf8_with_cpg(corpus_dir), project=project, actor=surveyor
        )

        assert batch.state == ImportBatch.State.CHECKED
        assert (batch.encoding, batch.encoding_source) == ("utf-8", "cpg")
        assert preview(batch)[4]["BZ"] == NOTES[3]

    def test_the_dbf_language_byte_is_evidence(self, corpus_dir, project, surveyor):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir, ldid=0x4D),
            project=project,
            actor=surveyor,
        )

        assert batch.state == ImportBatch.State.CHECKED
        assert (batch.encoding, batch.encoding_source) == (
            "gb18030",
            "dbf-language-driver",
        )
        assert preview(batch)[1]["BZ"] == NOTES[0]

    def test_gbk_bytes_under_a_utf8_cpg_are_errors_suggesting_gb18030(
        self, corpus_dir, project, surveyor
    ):
        before = registry_state()

        batch = run_import(
            corpus.gbk_with_lying_cpg(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
        )

        assert batch.state == ImportBatch.State.REFUSED
        assert (batch.encoding, batch.encoding_source) == ("utf-8", "cpg")
        assert batch.report["counts"]["rejected"] == 6
        encoding_problems = [
            problem
            for problem in reported(batch)
            if problem[2] in {"QSXZ", "BZ"} and "UTF-8" in problem[4]
        ]
        assert encoding_problems == [
            (
                row,
                "",
                field,
                "error",
                f"The value is not valid UTF-8 (chosen from cpg); as GB18030 it reads "
                f"“{text}”. Choose that encoding to import it.",
            )
            for row, (land_class, note) in enumerate(
                zip(CLASSES, NOTES, strict=True), start=1
            )
            for field, text in (("QSXZ", land_class), ("BZ", note))
        ]
        assert registry_state() == before

    def test_gbk_bytes_under_a_utf8_cpg_import_when_gb18030_is_chosen(
        self, corpus_dir, project, surveyor
    ):
        batch = run_import(
            corpus.gbk_with_lying_cpg(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            encoding="GB18030",
        )

        assert batch.state == ImportBatch.State.COMMITTED
        assert (batch.encoding, batch.encoding_source) == ("gb18030", "override")
        assert batch.created == 6
        assert preview(batch)[2]["BZ"] == NOTES[1]

    def test_utf8_bytes_under_a_gbk_cpg_refuse_the_file(
        self, corpus_dir, project, surveyor
    ):
        before = registry_state()

        batch = run_import(
            corpus.utf8_with_lying_cpg(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
        )

        assert_refused(
            batch,
            "utf8_with_lying_cpg.zip: the .cpg says GB18030, but the text is valid "
            "UTF-8; importing it as GB18030 would garble every Chinese name. Choose "
            "the encoding (UTF-8) explicitly to import it.",
        )
        assert registry_state() == before

    def test_utf8_bytes_under_a_gbk_cpg_import_when_utf8_is_chosen(
        self, corpus_dir, project, surveyor
    ):
        batch = run_import(
            corpus.utf8_with_lying_cpg(corpus_dir),
            project=project,
            actor=surveyor,
            encoding="UTF-8",
        )

        assert batch.state == ImportBatch.State.CHECKED
        assert (batch.encoding, batch.encoding_source) == ("utf-8", "override")
        assert preview(batch)[5]["BZ"] == NOTES[4]

    def test_an_unknown_encoding_name_is_refused(self, corpus_dir, project, surveyor):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir),
            project=project,
            actor=surveyor,
            encoding="KLINGON",
        )

        assert_refused(batch, "Unknown text encoding “KLINGON”.")


def raw(*values: bytes) -> dict[str, np.ndarray]:
    """Return one text field's raw values as the DBF reader gives them."""
    return {"BZ": np.array(values, dtype="S60")}


GBK = "原村民 张三".encode("gbk")
UTF8 = "原村民 张三".encode()


def choose(values, **evidence):
    evidence = {"override": None, "cpg": None, "language_driver": 0, **evidence}
    return encoding.choose(
        raw=values, rows=np.arange(1, 1 + len(values["BZ"])), file="f.zip", **evidence
    )


class TestChoose:
    def test_the_surveyors_choice_comes_first(self):
        choice = choose(raw(GBK), override="GBK", cpg="UTF-8", language_driver=0x4D)

        assert (choice.encoding, choice.source, choice.problems) == (
            "gb18030",
            "override",
            [],
        )

    def test_the_cpg_comes_before_the_language_byte(self):
        choice = choose(raw(UTF8), cpg="UTF-8", language_driver=0x4D)

        assert (choice.encoding, choice.source) == ("utf-8", "cpg")

    def test_a_blank_cpg_is_no_evidence(self):
        choice = choose(raw(GBK), cpg=" \n", language_driver=0x4D)

        assert (choice.encoding, choice.source) == ("gb18030", "dbf-language-driver")

    def test_the_language_byte_comes_before_guessing(self):
        choice = choose(raw(GBK), language_driver=0x7A)

        assert (choice.encoding, choice.source) == ("gb18030", "dbf-language-driver")

    def test_a_non_chinese_language_byte_is_ignored(self):
        # 0x57 is ANSI (code page 1252), often a tool's default.
        choice = choose(raw(GBK), language_driver=0x57)

        assert (choice.encoding, choice.source) == ("gb18030", "gb18030")

    def test_without_evidence_valid_utf8_is_utf8(self):
        choice = choose(raw(UTF8, b"GM-T-0001"))

        assert (choice.encoding, choice.source) == ("utf-8", "utf-8")

    def test_without_evidence_anything_else_is_gb18030(self):
        choice = choose(raw(GBK, UTF8))

        assert (choice.encoding, choice.source) == ("gb18030", "gb18030")

    def test_plain_ascii_needs_no_evidence(self):
        choice = choose(raw(b"GM-T-0001"), cpg="GBK")

        assert (choice.encoding, choice.source, choice.problems) == (
            "gb18030",
            "cpg",
            [],
        )

    def test_a_language_byte_contradicted_by_utf8_text_refuses_the_file(self):
        with pytest.raises(ImportRefused) as refused:
            choose(raw(UTF8), language_driver=0x4D)

        assert refused.value.en == (
            "f.zip: the DBF language byte says GB18030, but the text is valid UTF-8; "
            "importing it as GB18030 would garble every Chinese name. Choose the "
            "encoding (UTF-8) explicitly to import it."
        )
        assert_chinese(refused.value.zh, refused.value.en)

    def test_a_value_that_does_not_decode_names_its_row_and_field(self):
        broken = GBK + b"\xff"
        choice = choose(raw(b"GM", broken), override="GB18030")

        assert [(p.row, p.field, p.severity) for p in choice.problems] == [
            (2, "BZ", "error")
        ]
        assert choice.problems[0].en == (
            f"The value is not valid GB18030 text (bytes {broken.hex(' ')})."
        )

    @pytest.mark.parametrize(
        ("name", "codec"),
        [
            ("UTF-8", "utf-8"),
            ("utf8", "utf-8"),
            ("65001", "utf-8"),
            ("GBK", "gb18030"),
            ("cp936", "gb18030"),
            ("936", "gb18030"),
            ("GB2312", "gb18030"),
            ("ANSI 936", "gb18030"),
            (" GB18030\r\n", "gb18030"),
            ("Big5", "big5"),
        ],
    )
    def test_encoding_names_as_surveyors_write_them(self, name, codec):
        assert encoding.normalise(name) == codec
