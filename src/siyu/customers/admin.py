from django.contrib import admin

from siyu.customers.models import Channel, Customer, Identity, MergeRecord, Relationship


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "spend")
    list_filter = ("kind",)


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ("kind", "namespace", "value", "channel", "created_at")
    readonly_fields = fields
    can_delete = False


class RelationshipInline(admin.TabularInline):
    model = Relationship
    extra = 0
    fields = ("staff", "added_at", "status", "removed_by", "removed_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    # Writes go through the resolution service; the admin is for looking, not merging by hand.
    list_display = ("id", "name", "owner", "store", "first_channel", "stage", "first_seen_at")
    list_filter = ("stage", "store", "first_channel")
    search_fields = ("=id", "name", "name_pinyin", "=phone_tail")
    list_select_related = ("owner", "store", "first_channel")
    raw_id_fields = ("owner", "merged_into")
    readonly_fields = ("merged_into", "first_seen_at", "created_at", "updated_at")
    inlines = [IdentityInline, RelationshipInline]
    show_full_result_count = False


@admin.register(MergeRecord)
class MergeRecordAdmin(admin.ModelAdmin):
    list_display = ("merged_at", "survivor", "absorbed", "reason")
    raw_id_fields = ("survivor", "absorbed")
    readonly_fields = ("survivor", "absorbed", "reason", "moved", "absorbed_snapshot")

    def has_add_permission(self, request):
        return False
