"""The audit trail in a real headless Chromium: a move in the admin, then its record."""

import pytest

from registry.choices import Role
from registry.models import AuditRecord
from tests.browser import ARTIFACTS, log_in, outside_the_browser
from tests.factories import PASSWORD, ParcelFactory, user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def land(project):
    user_with_role(Role.REGISTRY_ADMIN, username="audit-admin")
    return ParcelFactory(code="GM-SC-0042", project=project)


def test_a_move_made_in_the_admin_is_read_on_the_audit_page(
    land, browser_page, live_server
):
    page, _requested = browser_page
    log_in(page, live_server, "audit-admin", PASSWORD)
    page.goto(f"{live_server.url}/admin/registry/parcel/{land.pk}/change/")
    page.select_option("select[name=new_status]", "declared")
    page.fill("input[name=evidence_ref]", "申报表 042")
    page.click("input[name=_save]")
    page.wait_for_load_state("networkidle")

    page.goto(f"{live_server.url}/audit/")
    assert page.inner_text("h1") == "审计记录"
    page.select_option("select[name=action]", "status_move")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=ARTIFACTS / "audit.png", full_page=True)

    rows = page.locator("#audit-records tbody tr[data-record]")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[1:5] == [
        "audit-admin",
        "状态变更",
        f"地块 GM-SC-0042 (#{land.pk})",
        "GM-SC",
    ]
    assert cells[5] == "测绘评估 → 权属申报; 变更类型: 推进; 证明材料编号: 申报表 042"
    assert cells[6] == "网页"
    assert cells[7] == "127.0.0.1"
    assert "Chrome" in cells[8]
    assert "action=status_move" in page.get_attribute("#audit-csv", "href")
    # Saving the form sent the (untouched) geometry back: no edit was recorded.
    recorded = outside_the_browser(
        lambda: sorted(
            AuditRecord.objects.filter(object_code="GM-SC-0042").values_list(
                "action", flat=True
            )
        )
    )
    assert recorded == ["status_move"]
