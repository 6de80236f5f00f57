from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.customers.models import Customer


class TagGroup(models.Model):
    """A family of tags on one dimension of the profile; exclusive: one tag per customer."""

    class Dimension(models.TextChoices):
        BASIC = "basic", _("Basic attributes")
        PREFERENCE = "preference", _("Preferences")
        BEHAVIOUR = "behaviour", _("Behaviour")
        COMMERCIAL = "commercial", _("Commercial value")

    name = models.CharField(_("name"), max_length=50, unique=True)
    dimension = models.CharField(_("dimension"), max_length=16, choices=Dimension.choices)
    exclusive = models.BooleanField(_("one tag per customer"), default=False)
    order = models.PositiveIntegerField(_("sort order"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    group = models.ForeignKey(TagGroup, on_delete=models.PROTECT, related_name="tags")
    name = models.CharField(_("name"), max_length=50)
    colour = models.CharField(_("colour"), max_length=7, default="#1677ff")
    description = models.CharField(_("description"), max_length=200, blank=True)
    order = models.PositiveIntegerField(_("sort order"), default=0)
    # A rule tag: its members are the customers matching this segment definition
    # (siyu.segments.dsl), kept in step by tags.services.rule_tag_refresh; null for manual tags.
    rule = models.JSONField(_("rule"), null=True, blank=True)
    refreshed_at = models.DateTimeField(_("last refreshed"), null=True, blank=True)
    last_added = models.PositiveIntegerField(_("added at the last refresh"), default=0)
    last_removed = models.PositiveIntegerField(_("removed at the last refresh"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="tag_unique_name_in_group"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_rule(self) -> bool:
        return self.rule is not None


class Source(models.TextChoices):
    MANUAL = "manual", _("manual")
    RULE = "rule", _("rule")
    IMPORT = "import", _("import")
    WECOM = "wecom", _("WeCom")
    API = "api", _("REST API")


class CustomerTag(models.Model):
    """One tag on one customer: who put it there, how, and when."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tag_links")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="assignments")
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        constraints = [
            models.UniqueConstraint(fields=["customer", "tag"], name="customertag_unique"),
        ]
        # The unique constraint serves lookups by customer; this one serves "who has tag X".
        indexes = [models.Index(fields=["tag", "customer"], name="customertag_tag_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.tag_id}"


class TagChange(models.Model):
    """History: a tag added to or removed from a customer. Outlives the tag (name kept)."""

    class Action(models.TextChoices):
        ADDED = "added", pgettext_lazy("tag change", "added")
        REMOVED = "removed", pgettext_lazy("tag change", "removed")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tag_changes")
    tag = models.ForeignKey(
        Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    tag_name = models.CharField(max_length=50)
    action = models.CharField(max_length=8, choices=Action.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("tag change")
        verbose_name_plural = _("tag changes")
        indexes = [models.Index(fields=["customer", "-at"], name="tagchange_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.action} {self.tag_name}"
