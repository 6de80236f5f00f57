from django.contrib import admin

from siyu.core.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "target_type", "target_id", "summary")
    list_filter = ("action", "target_type")
    search_fields = ("target_id", "summary", "actor__username")
    list_select_related = ("actor",)
    show_full_result_count = False

    # The audit log is evidence: nobody edits or deletes it, not even an admin.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
