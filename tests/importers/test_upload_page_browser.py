"""The surveyor's upload page in a real headless Chromium, with the real queue."""

import pytest
from playwright.sync_api import expect

from importers.models import ImportBatch
from registry.models import Parcel
from tests.browser import ARTIFACTS, log_in, outside_the_browser
from tests.factories import PASSWORD
from tests.importers import corpus
from tests.importers.helpers import DATABASES, run_worker

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=DATABASES),
]


@pytest.fixture
def survey_file(corpus_dir, surveyor, project, settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    return corpus.gbk_without_cpg(corpus_dir)


def test_a_surveyor_uploads_checks_and_commits_a_gbk_shapefile(
    survey_file, project, browser_page, live_server
):
    page, requested = browser_page
    log_in(page, live_server, "surveyor", PASSWORD)

    page.goto(f"{live_server.url}/imports/new/")
    page.select_option("select[name=project]", value=str(project.pk))
    page.set_input_files("input[name=file]", str(survey_file))
    page.click("form.stacked button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "排队中" in page.inner_text("#batch-state")

    outside_the_browser(run_worker)
    # The page reloads itself every 2 s while the batch runs (a reload of our
    # own could be cut short by it): wait for it to show the outcome.
    expect(page.locator("#batch-state")).to_have_text("已检查，可提交", timeout=15_000)
    assert page.inner_text("#batch-state") == "已检查，可提交"
    assert "原村民 张三 / 红坳村" in page.inner_text("table.projects >> nth=1")
    page.screenshot(path=ARTIFACTS / "import-checked.png", full_page=True)
    assert outside_the_browser(Parcel.objects.count) == 0  # a check writes nothing

    page.click("#commit")
    page.wait_for_load_state("networkidle")
    outside_the_browser(run_worker)
    expect(page.locator("#batch-state")).to_have_text("已提交", timeout=15_000)
    assert page.inner_text("#batch-state") == "已提交"
    assert page.inner_text("#batch-counts") == "6 / 0 / 0"
    page.screenshot(path=ARTIFACTS / "import-committed.png", full_page=True)

    batch = outside_the_browser(ImportBatch.objects.get)
    assert (batch.state, batch.created, batch.encoding) == ("committed", 6, "gb18030")
    assert outside_the_browser(Parcel.objects.filter(project=project).count) == 6
    assert all(url.startswith(live_server.url) for url in requested)
