"""The analysts' dashboard in a real headless Chromium."""

import datetime

import pytest

from registry import services, statistics
from registry.choices import Role
from registry.workflow import Status
from tests.browser import ARTIFACTS, log_in, outside_the_browser
from tests.factories import PASSWORD, ParcelFactory, parcel_square, user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def banked_land(project):
    admin = user_with_role(Role.REGISTRY_ADMIN, username="dash-admin")
    user_with_role(Role.ANALYST, username="dash-analyst")
    for n in range(4):
        parcel = ParcelFactory(
            project=project, status=Status.CLEARED, geom=parcel_square(project, n, 200)
        )
        if n < 3:
            services.parcel_transition(
                parcel=parcel,
                to_status=Status.BANKED,
                actor=admin,
                banked_on=datetime.date(2025, 1, 1),
                bank_ref=f"RK-{n}",
            )
    return project


def test_the_dashboard_draws_its_charts_and_shows_the_databases_figures(
    banked_land, browser_page, live_server
):
    page, requested = browser_page
    log_in(page, live_server, "dash-analyst", PASSWORD)
    page.goto(f"{live_server.url}/dashboard/")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    district = outside_the_browser(
        lambda: statistics.summarise(statistics.area_cells())
    )
    assert page.inner_text("#banked-km2") == f"{district.banked_m2 / 1e6:.3f}"
    assert page.inner_text("h1") == "进度看板"
    row = page.locator(f"tr[data-project='{banked_land.code}'] td.banked")
    assert row.inner_text() == f"{district.banked_m2 / 1e6:,.3f}"
    # Both charts drew something: their canvases are not blank.
    for canvas in ("#by-project", "#banked-over-time"):
        inked = page.evaluate(
            """(selector) => {
                const c = document.querySelector(selector);
                const context = c.getContext("2d");
                const pixels = context.getImageData(0, 0, c.width, c.height).data;
                let inked = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
                return inked;
            }""",
            canvas,
        )
        assert inked > 1000, canvas
    assert any(
        url.endswith("/static/vendor/chartjs/chart.umd.min.js") for url in requested
    )
    assert all(url.startswith(live_server.url) for url in requested)
