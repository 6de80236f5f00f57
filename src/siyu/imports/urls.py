from django.urls import path

from siyu.imports import views

app_name = "imports"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_new, name="new"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/start/", views.job_start, name="start"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
    path("<int:pk>/rollback/", views.job_rollback, name="rollback"),
    path("<int:pk>/errors.csv", views.job_errors, {"fmt": "csv"}, name="errors_csv"),
    path("<int:pk>/errors.xlsx", views.job_errors, {"fmt": "xlsx"}, name="errors_xlsx"),
]
