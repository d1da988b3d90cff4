"""Stored uploads: refused when too big, removed once committed."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from importers import pipeline, uploads
from importers.errors import ImportRefused
from tests.importers import corpus
from tests.importers.helpers import DATABASES, run_import

pytestmark = pytest.mark.django_db(databases=DATABASES)


def test_an_upload_over_the_limit_is_refused_before_it_is_written(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "upload_bytes": 10}
    with pytest.raises(ImportRefused) as refused:
        uploads.store(SimpleUploadedFile("big.zip", b"x" * 11))
    assert refused.value.en == "big.zip is 11 bytes; uploads may be at most 10 bytes."
    assert not (tmp_path / "uploads").exists()


def test_a_committed_upload_is_removed_but_a_file_named_on_the_command_line_stays(
    settings, tmp_path, corpus_dir, project, surveyor
):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    source = corpus.shapefile_zip(corpus_dir)
    stored = uploads.store(SimpleUploadedFile("p.zip", source.read_bytes()))
    batch = pipeline.new_batch(
        path=stored,
        name="p.zip",
        project=project,
        actor=surveyor,
        options=pipeline.Options(),
    )
    assert pipeline.run(batch, commit=True).state == "committed"
    assert not stored.exists()
    assert list((tmp_path / "uploads").iterdir()) == []

    again = run_import(source, project=project, actor=surveyor, commit=True)
    assert again.state == "committed"
    assert source.exists()
