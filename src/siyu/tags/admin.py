from django.contrib import admin

from siyu.tags.models import CustomerTag, Tag, TagChange, TagGroup


@admin.register(TagGroup)
class TagGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "dimension", "exclusive", "order")
    list_filter = ("dimension",)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "group", "colour", "order")
    list_filter = ("group",)
    list_select_related = ("group",)


@admin.register(CustomerTag)
class CustomerTagAdmin(admin.ModelAdmin):
    list_display = ("customer", "tag", "source", "added_at")
    list_filter = ("source",)
    raw_id_fields = ("customer", "tag", "added_by")
    list_select_related = ("customer", "tag")
    show_full_result_count = False


@admin.register(TagChange)
class TagChangeAdmin(admin.ModelAdmin):
    list_display = ("customer", "tag_name", "action", "source", "at")
    list_filter = ("action", "source")
    raw_id_fields = ("customer", "tag", "by")
    show_full_result_count = False
