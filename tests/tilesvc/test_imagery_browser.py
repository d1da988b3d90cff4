"""A surveyor uploads an orthophoto in headless Chromium and watches it convert.

The real queue runs in a thread of its own while the page polls the status JSON;
each progress step is slowed a little so that the page is seen mid-way.
"""

import threading
import time

import pytest
from django.db import connections

from tests.browser import ARTIFACTS, log_in
from tests.factories import PASSWORD
from tests.importers.helpers import run_worker
from tests.tilesvc.test_imagery import halves, place_in, write_geotiff
from tilesvc import imagery

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("empty_queue"),
]

RUNNING_PROGRESS = """() => {
    const bar = document.querySelector("tr[data-orthophoto] progress");
    return bar !== null && bar.value > 2 && bar.value < 100
        ? bar.value : false;
}"""


@pytest.fixture
def geotiff(tmp_path, project, surveyor, settings):
    settings.IMAGERY_DIR = tmp_path / "imagery"
    place = place_in(project)
    return write_geotiff(
        tmp_path / "DJI_0001.tif", west=place.west, north=place.north, data=halves()
    )


@pytest.fixture
def slow_steps(monkeypatch):
    """Make every progress step take a moment, and the windows many."""
    monkeypatch.setattr(imagery, "WINDOW_PX", 256)
    recorder = imagery._progress_recorder

    def slowed(orthophoto):
        record = recorder(orthophoto)

        def step(percent, stage, **fields):
            record(percent, stage, **fields)
            time.sleep(0.25)

        return step

    monkeypatch.setattr(imagery, "_progress_recorder", slowed)


def test_a_surveyor_uploads_an_orthophoto_and_watches_it_convert(
    geotiff, project, slow_steps, browser_page, live_server
):
    page, requested = browser_page
    log_in(page, live_server, "surveyor", PASSWORD)
    page.goto(f"{live_server.url}/imagery/upload/?project={project.pk}")
    page.fill("input[name=title]", "科学城 2026-12 航拍")
    page.set_input_files("input[name=file]", str(geotiff))
    page.click("form.stacked button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{live_server.url}/imagery/projects/{project.pk}/"
    row = page.locator("tr[data-orthophoto]")
    assert row.get_attribute("data-state") == "queued"
    assert row.locator(".state").inner_text() == "排队中"

    def work():
        try:
            run_worker()
        finally:
            connections.close_all()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        midway = page.wait_for_function(RUNNING_PROGRESS, timeout=60_000)
        assert 2 < midway.json_value() < 100
        assert page.locator("tr[data-orthophoto] .state").inner_text() == "转换中"
        page.screenshot(path=ARTIFACTS / "imagery-converting.png", full_page=True)
        page.wait_for_selector("tr[data-state='ready']", timeout=120_000)
    finally:
        worker.join(timeout=300)
    assert not worker.is_alive()

    row = page.locator("tr[data-orthophoto]")
    assert row.locator(".state").inner_text() == "就绪"
    assert row.locator("progress").count() == 0
    assert row.locator("a", has_text="TileJSON").count() == 1
    page.screenshot(path=ARTIFACTS / "imagery-ready.png", full_page=True)
    assert any(url.endswith(".json") and "/imagery/" in url for url in requested)
    assert all(url.startswith(live_server.url) for url in requested)
