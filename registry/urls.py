"""Pages of the registry app."""

from django.urls import path

from registry import map_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/progress.csv", views.dashboard_csv, name="dashboard-csv"),
    path("map/", map_views.district, name="map-district"),
    path("projects/<str:code>/map", map_views.project, name="map-project"),
]
