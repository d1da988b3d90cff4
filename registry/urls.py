"""Pages of the registry app."""

from django.urls import path

from registry import views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/progress.csv", views.dashboard_csv, name="dashboard-csv"),
]
