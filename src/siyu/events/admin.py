from django.contrib import admin

from siyu.events.models import Event, EventType


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "label")
    search_fields = ("name", "label")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "type", "customer", "source")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    show_full_result_count = False

    # Events are what customers did; the admin reads them, ingestion alone writes them.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
