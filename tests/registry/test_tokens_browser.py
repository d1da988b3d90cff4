"""The API token page in a real headless Chromium: made, shown once, used, revoked."""

import pytest
import requests
from rest_framework.authtoken.models import Token

from registry.choices import Role
from tests.browser import ARTIFACTS, log_in, outside_the_browser
from tests.factories import PASSWORD, user_with_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def token_user(db):
    return user_with_role(Role.PLANNER, username="token-planner")


def test_a_planner_makes_a_token_uses_it_and_revokes_it(
    token_user, browser_page, live_server
):
    page, _requested = browser_page
    log_in(page, live_server, "token-planner", PASSWORD)
    page.click("header a[href='/accounts/token/']")
    assert page.inner_text("#token-state") == "你还没有令牌。"

    page.click("button[value=issue]")
    key = page.inner_text("#token-key")
    page.screenshot(path=ARTIFACTS / "api-token.png", full_page=True)
    stored = outside_the_browser(
        lambda: Token.objects.get(user__username="token-planner").key
    )
    api = f"{live_server.url}/api/projects/"
    used = requests.get(api, headers={"Authorization": f"Token {key}"}, timeout=30)

    assert key == stored
    assert used.status_code == 200
    page.goto(f"{live_server.url}/accounts/token/")
    assert key not in page.content()
    assert page.inner_text("#token-state").startswith("你有一个令牌")

    page.click("button[value=revoke]")
    page.wait_for_load_state("networkidle")
    refused = requests.get(api, headers={"Authorization": f"Token {key}"}, timeout=30)

    assert page.inner_text("#token-state") == "你还没有令牌。"
    assert "你的 API 令牌已撤销" in page.inner_text("ul.messages")
    assert refused.status_code == 401
    assert not outside_the_browser(lambda: Token.objects.exists())
