"""Orthophoto pages and raster tiles; mounted at ``imagery/``."""

from django.urls import path

from tilesvc import imagery_views as views

app_name = "imagery"

urlpatterns = [
    path("", views.orthophoto_list, name="list"),
    path("projects/<int:project_id>/", views.orthophoto_list, name="project"),
    path("upload/", views.orthophoto_upload, name="upload"),
    path("api/", views.api_upload, name="api-upload"),
    path("<int:pk>.json", views.status, name="status"),
    path("<int:pk>/tilejson.json", views.tilejson, name="tilejson"),
    path(
        "<int:pk>/tiles/<int:z>/<int:x>/<int:y>.png",
        views.tile,
        {"img_format": "png"},
        name="tile-png",
    ),
    path(
        "<int:pk>/tiles/<int:z>/<int:x>/<int:y>.webp",
        views.tile,
        {"img_format": "webp"},
        name="tile-webp",
    ),
]
