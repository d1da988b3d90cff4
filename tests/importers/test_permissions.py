"""Only surveyors of the project and registry admins may import into it."""

import pytest

from importers import pipeline
from importers.models import ImportBatch
from registry.errors import PermissionRefused
from tests.importers import corpus
from tests.importers.helpers import DATABASES, assert_chinese, run_import

pytestmark = pytest.mark.django_db(databases=DATABASES)

REFUSED = ["case_officer", "planner", "analyst", "outsider", "surveyor_elsewhere"]


@pytest.mark.parametrize("persona", REFUSED)
def test_others_may_not_start_an_import(persona, request, corpus_dir, project):
    upload = corpus.shapefile_zip(corpus_dir)

    with pytest.raises(PermissionRefused) as refused:
        pipeline.new_batch(
            path=upload,
            name=upload.name,
            project=project,
            actor=request.getfixturevalue(persona),
            options=pipeline.Options(),
        )

    assert refused.value.en == "You may not import survey data into project GM-SC."
    assert_chinese(refused.value.zh, refused.value.en)
    assert ImportBatch.objects.count() == 0


@pytest.mark.parametrize("persona", ["surveyor", "registry_admin"])
def test_surveyors_of_the_project_and_registry_admins_may_import(
    persona, request, corpus_dir, project
):
    actor = request.getfixturevalue(persona)

    batch = run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=actor, commit=True
    )

    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.created_by == actor
    assert batch.created == 6


def test_a_surveyor_may_not_import_into_another_project(
    corpus_dir, other_project, surveyor
):
    upload = corpus.shapefile_zip(corpus_dir)

    with pytest.raises(PermissionRefused) as refused:
        pipeline.new_batch(
            path=upload,
            name=upload.name,
            project=other_project,
            actor=surveyor,
            options=pipeline.Options(),
        )

    assert refused.value.en == "You may not import survey data into project GM-L6."
