"""Pages of the registry app."""

from django.urls import path

from registry import audit_views, map_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/progress.csv", views.dashboard_csv, name="dashboard-csv"),
    path("map/", map_views.district, name="map-district"),
    path("projects/<str:code>/map", map_views.project, name="map-project"),
    path("audit/", audit_views.audit_list, name="audit"),
    path("audit/records.csv", audit_views.audit_csv, name="audit-csv"),
]
