"""The admin's map widget, in a real headless Chromium, with no internet at all."""

import pytest

from registry.choices import Role
from tests.browser import ARTIFACTS, log_in
from tests.factories import PASSWORD, ParcelFactory, user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def parcel():
    """A registry admin and one parcel, made before the browser starts."""
    user_with_role(Role.REGISTRY_ADMIN, username="map-admin")
    return ParcelFactory()


def test_the_parcel_map_draws_its_geometry_from_local_static_files_only(
    parcel, browser_page, live_server
):
    page, requested = browser_page
    log_in(page, live_server, "map-admin", PASSWORD)

    page.goto(f"{live_server.url}/admin/registry/parcel/{parcel.pk}/change/")
    page.wait_for_selector("#id_geom_map canvas")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=ARTIFACTS / "admin-parcel-map.png")

    # OpenLayers came from the vendored copy, and nothing left the machine.
    assert any(url.endswith("/static/vendor/ol/ol.js") for url in requested)
    outside = [
        url
        for url in requested
        if not url.startswith(live_server.url) and not url.startswith("data:")
    ]
    assert outside == []
    # The widget holds the parcel's geometry and the view is fitted around it.
    drawn = page.evaluate(
        """() => {
            const widget = window.geodjango_geom;
            const features = widget.featureCollection.getArray();
            const extent = features[0].getGeometry().getExtent();
            const view = widget.map.getView().calculateExtent();
            return {
                count: features.length,
                inside: view[0] <= extent[0] && view[1] <= extent[1]
                    && view[2] >= extent[2] && view[3] >= extent[3],
            };
        }"""
    )
    assert drawn == {"count": 1, "inside": True}
    # The page is the Chinese admin.
    assert page.locator("html").get_attribute("lang") == "zh-hans"
