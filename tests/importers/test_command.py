"""``manage.py import_survey`` and ``undo_import``: the same core, from a shell.

Without ``--commit`` the command is a dry run. Exit status 0 when the file is
accepted (dry run) or committed, 1 when it is refused.
"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from importers.models import ImportBatch
from registry.models import Parcel
from tests.importers import corpus
from tests.importers.helpers import DATABASES, SIX_VALID, registry_state

pytestmark = pytest.mark.django_db(databases=DATABASES)


def import_survey(path, *args, user="surveyor", project="GM-SC") -> tuple[int, str]:
    """Run the command; return its exit status and what it printed."""
    out = StringIO()
    try:
        call_command(
            "import_survey",
            str(path),
            "--project",
            project,
            "--user",
            user,
            "--verbosity",
            "0",
            *args,
            stdout=out,
        )
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def last_batch() -> ImportBatch:
    return ImportBatch.objects.latest("pk")


def test_a_dry_run_checks_and_writes_nothing(corpus_dir, surveyor):
    before = registry_state()

    status, output = import_survey(corpus.shapefile_zip(corpus_dir))

    assert status == 0
    assert last_batch().state == ImportBatch.State.CHECKED
    assert "(checked)" in output
    assert "features 6, valid 6, rejected 0, errors 0, warnings 0" in output
    assert "created" not in output
    assert registry_state() == before


def test_commit_imports(corpus_dir, surveyor):
    status, output = import_survey(corpus.shapefile_zip(corpus_dir), "--commit")

    assert status == 0
    batch = last_batch()
    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.created_by == surveyor
    assert "created 6, updated 0, unchanged 0" in output
    assert Parcel.objects.count() == 6


def test_a_refused_file_exits_with_status_1(corpus_dir, surveyor):
    before = registry_state()

    status, output = import_survey(corpus.with_duplicate_codes(corpus_dir), "--commit")

    assert status == 1
    assert last_batch().state == ImportBatch.State.REFUSED
    assert "features 6, valid 5, rejected 1, errors 1, warnings 0" in output
    assert (
        "[error] row 5 GM-T-0002 DKBM: 编码 GM-T-0002 已被第 2 行使用。 / "
        "The code GM-T-0002 is already used by row 2." in output
    )
    assert registry_state() == before


def test_a_file_refused_as_a_whole_prints_why_in_both_languages(corpus_dir, surveyor):
    status, output = import_survey(corpus.not_a_zip(corpus_dir), "--commit")

    assert status == 1
    refusal = last_batch().report["refusal"]
    assert refusal["en"] == "not_a_zip.zip is not a valid zip archive."
    assert f"  {refusal['zh']}\n  {refusal['en']}" in output


def test_the_report_is_written_as_json(corpus_dir, tmp_path, surveyor):
    report_path = tmp_path / "报告.json"

    status, _ = import_survey(
        corpus.with_unknown_land_class(corpus_dir), "--report", str(report_path)
    )

    assert status == 1
    report = json.loads(report_path.read_text(encoding="utf-8"))
    batch = last_batch()
    assert report["batch"] == batch.pk
    assert report["state"] == "refused"
    assert report["sha256"] == batch.sha256
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 0)
    assert report["rejected"] == 1
    assert report["accepted"] is False
    assert report["encoding"] == {"name": "gb18030", "source": "gb18030"}
    assert report["counts"] == {**SIX_VALID, "valid": 5, "rejected": 1, "errors": 1}
    assert report["problems"] == [
        {
            "row": 6,
            "code": "GM-T-0006",
            "field": "QSXZ",
            "severity": "error",
            "zh": "未知的土地类型“国有划拨”；请将其对应到三种土地类型之一。",
            "en": "Unknown land class “国有划拨”; map it to one of the three.",
        }
    ]
    assert report["preview"][0] == [
        1,
        "GM-T-0001",
        "集体",
        3600.0,
        "原村民 张三 / 红坳村",
    ]
    # Chinese is written as such, not as \\u escapes.
    assert "国有划拨" in report_path.read_text(encoding="utf-8")


def test_the_report_of_a_committed_import_has_its_counts(
    corpus_dir, tmp_path, surveyor
):
    report_path = tmp_path / "report.json"

    import_survey(corpus.shapefile_zip(corpus_dir), "--commit", "--report", report_path)

    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["state"] == "committed"
    assert (report["created"], report["updated"], report["unchanged"]) == (6, 0, 0)


def test_land_class_sets_the_class_of_a_file_without_one(corpus_dir, surveyor):
    upload = corpus.shapefile_zip(
        corpus_dir, fields={"code": "DKBM", "declared_area": "MJ", "owner_note": "BZ"}
    )

    status, output = import_survey(upload, "--commit")
    assert status == 1
    assert "missing: land_class" in output

    status, _ = import_survey(upload, "--commit", "--land-class", "state_farm")
    assert status == 0
    assert set(Parcel.objects.values_list("land_class", flat=True)) == {"state_farm"}


def test_land_class_must_be_a_known_class(corpus_dir, surveyor):
    with pytest.raises(CommandError, match="invalid choice: 'farm'"):
        import_survey(corpus.shapefile_zip(corpus_dir), "--land-class", "farm")


def test_encoding_overrides_a_lying_cpg(corpus_dir, surveyor):
    upload = corpus.gbk_with_lying_cpg(corpus_dir)

    assert import_survey(upload)[0] == 1

    status, output = import_survey(upload, "--commit", "--encoding", "GB18030")
    assert status == 0
    assert "gb18030 (override)" in output
    assert Parcel.objects.count() == 6


def test_crs_names_the_crs_of_a_file_without_one(corpus_dir, surveyor):
    upload = corpus.shapefile_zip(corpus_dir, prj=False)

    assert import_survey(upload)[0] == 1

    status, output = import_survey(upload, "--commit", "--crs", "EPSG:4547")
    assert status == 0
    assert "EPSG:4547 CGCS2000 / 3-degree Gauss-Kruger CM 114E" in output


def test_a_mapping_file_with_chinese_field_names_is_used(
    corpus_dir, tmp_path, surveyor
):
    upload = corpus.with_unknown_land_class(corpus_dir, fields="chinese")
    mapping = {
        "fields": {
            "code": "地块编码",
            "land_class": "权属性质",
            "declared_area": "面积",
        },
        "values": {"land_class": {"国有划拨": "unfinished_expropriation"}},
    }
    mapping_path = tmp_path / "映射.json"
    mapping_path.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")

    assert import_survey(upload)[0] == 1

    status, _ = import_survey(upload, "--commit", "--mapping", str(mapping_path))
    assert status == 0
    batch = last_batch()
    assert batch.mapping == {"layer": "parcels", **mapping}
    assert Parcel.objects.get(code="GM-T-0006").land_class == "unfinished_expropriation"


def test_a_mapping_that_does_not_fit_the_file_is_refused(
    corpus_dir, tmp_path, surveyor
):
    mapping_path = tmp_path / "mapping.json"
    mapping_path.write_text(
        json.dumps({"fields": {"code": "宗地代码", "land_class": "权属性质"}}),
        encoding="utf-8",
    )

    status, _ = import_survey(
        corpus.shapefile_zip(corpus_dir, fields="chinese"),
        "--mapping",
        str(mapping_path),
    )

    assert status == 1
    assert last_batch().report["refusal"]["en"] == (
        "parcels.zip: the field mapping does not fit the file (missing: —; not in "
        "the file: code=宗地代码). The file's fields are: "
        "地块编码, 权属性质, 面积, 备注."
    )


def test_buildings_and_a_chosen_source_layer(corpus_dir, surveyor):
    import_survey(corpus.shapefile_zip(corpus_dir / "parcels"), "--commit")
    upload = corpus.buildings_zip(
        corpus_dir, extra_layers=[("old", corpus.BUILDINGS[:1])]
    )

    assert import_survey(upload, "--layer", "buildings")[0] == 1
    status, output = import_survey(
        upload, "--commit", "--layer", "buildings", "--source-layer", "buildings"
    )

    assert status == 0
    assert "created 4, updated 0, unchanged 0" in output


def test_the_acting_user_needs_the_right_to_import(corpus_dir, project, planner):
    with pytest.raises(CommandError) as refused:
        import_survey(corpus.shapefile_zip(corpus_dir), user="planner")

    assert str(refused.value) == (
        "您无权向项目 GM-SC 导入测绘数据。 / "
        "You may not import survey data into project GM-SC."
    )
    assert ImportBatch.objects.count() == 0


def test_without_user_the_only_superuser_acts(corpus_dir, project, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="x" * 12)
    out = StringIO()

    call_command(
        "import_survey",
        str(corpus.shapefile_zip(corpus_dir)),
        "--project",
        "GM-SC",
        "--verbosity",
        "0",
        stdout=out,
    )

    assert last_batch().created_by == admin


def test_without_user_and_without_a_superuser_the_command_asks_for_one(
    corpus_dir, project
):
    with pytest.raises(CommandError, match="name the acting user with --user"):
        call_command(
            "import_survey",
            str(corpus.shapefile_zip(corpus_dir)),
            "--project",
            "GM-SC",
        )


def test_a_missing_file_or_project_is_an_error(corpus_dir, surveyor):
    with pytest.raises(CommandError, match="no such file"):
        import_survey(corpus_dir / "missing.zip")
    with pytest.raises(CommandError, match="no project with code NOPE"):
        import_survey(corpus.shapefile_zip(corpus_dir), project="NOPE")


def test_the_progress_bar_goes_to_stderr(corpus_dir, surveyor, capsys):
    call_command(
        "import_survey",
        str(corpus.shapefile_zip(corpus_dir)),
        "--project",
        "GM-SC",
        "--user",
        "surveyor",
        stdout=StringIO(),
    )

    progress = capsys.readouterr().err
    for stage in ("unpacking", "reading", "checking geometry", "checking overlaps"):
        assert f"\r{stage}: " in progress


def test_undo_import_undoes_a_committed_batch(corpus_dir, surveyor, registry_admin):
    import_survey(corpus.shapefile_zip(corpus_dir), "--commit")
    batch = last_batch()
    out = StringIO()

    call_command("undo_import", str(batch.pk), "--user", "registry_admin", stdout=out)

    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.UNDONE
    assert f"#{batch.pk}" in out.getvalue()
    assert Parcel.objects.count() == 0


def test_undo_import_refuses_others(corpus_dir, surveyor):
    import_survey(corpus.shapefile_zip(corpus_dir), "--commit")
    batch = last_batch()

    with pytest.raises(CommandError) as refused:
        call_command("undo_import", str(batch.pk), "--user", "surveyor")

    assert str(refused.value).endswith(
        " / Only registry administrators may undo an import."
    )
    assert Parcel.objects.count() == 6
