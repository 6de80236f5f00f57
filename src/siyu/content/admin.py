from django.contrib import admin

from siyu.content.models import Material, MaterialView, Script, ScriptCategory, TrackedLink

admin.site.register(ScriptCategory)
admin.site.register(Script)
admin.site.register(Material)


@admin.register(TrackedLink)
class TrackedLinkAdmin(admin.ModelAdmin):
    list_display = ["code", "material", "staff", "customer", "channel", "view_count"]
    search_fields = ["code"]
    # Thousands of customers and staff: id inputs, not select boxes of every row.
    raw_id_fields = ["material", "staff", "customer", "channel"]
    list_select_related = ["material", "staff", "customer", "channel"]


@admin.register(MaterialView)
class MaterialViewAdmin(admin.ModelAdmin):
    list_display = ["link", "material", "customer", "opened_at", "seconds"]
    raw_id_fields = ["link", "material", "customer", "staff"]
    list_select_related = ["link", "material", "customer"]
