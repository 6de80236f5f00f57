from django.urls import path

from siyu.content import views

app_name = "content"
urlpatterns = [
    path("", views.script_index, name="scripts"),
    path("scripts/new/", views.script_new, name="script_new"),
    path("scripts/<int:pk>/edit/", views.script_edit, name="script_edit"),
    path("scripts/<int:pk>/archive/", views.script_archive, name="script_archive"),
    path("scripts/<int:pk>/copied/", views.script_copied, name="script_copied"),
    path("categories/new/", views.category_new, name="category_new"),
    path("materials/", views.material_index, name="materials"),
    path("materials/new/", views.material_new, name="material_new"),
    path("materials/<int:pk>/edit/", views.material_edit, name="material_edit"),
    path("uploads/<path:name>", views.upload, name="upload"),
    path("materials/<int:pk>/preview/", views.material_preview, name="material_preview"),
    path("materials/<int:pk>/", views.material_detail, name="material_detail"),
    path("materials/<int:pk>/share/", views.material_share, name="material_share"),
    path("customers/<int:pk>/scripts/", views.customer_scripts, name="customer_scripts"),
    path("customers/<int:pk>/cases/", views.customer_case_orders, name="customer_case_orders"),
    path("cases/new/<int:order_id>/", views.case_new, name="case_new"),
]
