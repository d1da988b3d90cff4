"""Top-level URL configuration: every route requires login except the login page."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularJSONAPIView,
    SpectacularSwaggerView,
)

from config import lockouts
from registry import api as registry_api
from registry import tokens
from registry.admin import admin_site

lockouts.register(admin_site)

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/token/", tokens.token_page, name="api-token"),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("admin/", admin_site.urls),
    path("imports/", include("importers.urls")),
    path("api/imports/", include("importers.api_urls")),
    path("api/statistics/progress/", registry_api.progress, name="api-progress"),
    path("api/statistics/banked/", registry_api.banked, name="api-banked"),
    path("api/exports/banked/", registry_api.export_banked, name="api-export-banked"),
    path("api/", include("registry.rest.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/schema.json", SpectacularJSONAPIView.as_view(), name="api-schema-json"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("ogcapi/", include("registry.ogcapi.urls")),
    path("tiles/", include("tilesvc.urls")),
    path("imagery/", include("tilesvc.imagery_urls")),
    path("", include("registry.urls")),
]

# A URL under the APIs that matches no route gets the APIs' bilingual JSON 404.
handler404 = "config.api_errors.page_not_found"
