from django.core.validators import FileExtensionValidator
from django.db import models
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from siyu.org.models import Staff

IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "gif", "webp"]
FILE_EXTENSIONS = ["pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip"]

# The built-in script categories: a fixed key stored on the row (created by migration 0002),
# shown under a translated label, so renaming the UI language never touches the data.
BUILTIN_CATEGORIES = {
    "greeting": _("Greeting"),
    "sharing": _("Sharing"),
    "daily": _("Daily chat"),
    "qa": _("Q&A"),
    "activation": _("Activation"),
    "after_sales": _("After-sales"),
}


class ScriptCategory(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    builtin = models.CharField(max_length=16, blank=True, editable=False)
    order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("script category")
        verbose_name_plural = _("script categories")

    def __str__(self) -> str:
        return str(self.label)

    @property
    def label(self):
        return BUILTIN_CATEGORIES.get(self.builtin, self.name)


class Material(models.Model):
    """A piece of content staff share: an article, a poster, a product page or a file."""

    class Kind(models.TextChoices):
        ARTICLE = "article", _("Article")
        POSTER = "poster", _("Poster")
        PRODUCT = "product", _("Product page")
        FILE = "file", _("File")
        CASE = "case", _("Case")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        ARCHIVED = "archived", _("Archived")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=100)
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    # Sanitised HTML (content.sanitise) — the services never store anything else here.
    body = models.TextField(_("body"), blank=True)
    image = models.FileField(
        _("image"),
        upload_to="content/images/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
    )
    file = models.FileField(
        _("file"),
        upload_to="content/files/",
        blank=True,
        validators=[FileExtensionValidator(FILE_EXTENSIONS)],
    )
    url = models.URLField(_("external link"), blank=True)
    owner = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="materials"
    )
    tags = models.CharField(_("tags"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    # A case (testimonial) made from a delivered order (content.services.case_material_create).
    source_order = models.ForeignKey(
        "commerce.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="case_materials",
        verbose_name=_("source order"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        verbose_name = _("material")
        verbose_name_plural = _("materials")

    def __str__(self) -> str:
        return self.title

    @property
    def tag_list(self) -> list[str]:
        return [t for t in (s.strip() for s in self.tags.split(",")) if t]


class Script(models.Model):
    """A reusable message (话术) with variables filled in per customer by content.formatting."""

    category = models.ForeignKey(ScriptCategory, on_delete=models.PROTECT, related_name="scripts")
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("text"))
    material = models.ForeignKey(
        Material, null=True, blank=True, on_delete=models.SET_NULL, related_name="scripts"
    )
    image = models.FileField(
        _("image"),
        upload_to="content/scripts/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
    )
    miniprogram_appid = models.CharField(_("mini-program appid"), max_length=64, blank=True)
    miniprogram_path = models.CharField(_("mini-program page"), max_length=200, blank=True)
    miniprogram_title = models.CharField(_("mini-program card title"), max_length=64, blank=True)
    # Copies by staff and sends by campaigns; a reply can only be traced to a campaign's send,
    # so the reply rate counts against those alone.
    usage_count = models.PositiveIntegerField(_("times used"), default=0)
    sent_count = models.PositiveIntegerField(_("times sent by campaigns"), default=0)
    reply_count = models.PositiveIntegerField(_("replies"), default=0)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category__order", "-usage_count", "pk"]
        verbose_name = _("script")
        verbose_name_plural = _("scripts")

    def __str__(self) -> str:
        return self.title


class TrackedLink(models.Model):
    """A material shared by one staff member with one customer or one channel, reached at a
    short public path (/m/<code>). The same (material, staff, customer, channel) always gets
    the same link, so every open of it counts in one place."""

    code = models.CharField(max_length=12, unique=True)
    material = models.ForeignKey(Material, on_delete=models.CASCADE, related_name="links")
    # PROTECT: staff are deactivated, not deleted; their links keep the view history.
    staff = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    channel = models.ForeignKey(
        "customers.Channel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Denormalised from MaterialView so the share list shows counts without a grouped query.
    view_count = models.PositiveIntegerField(_("opens"), default=0)
    seconds_read = models.PositiveIntegerField(_("reading time (s)"), default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("tracked link")
        verbose_name_plural = _("tracked links")
        constraints = [
            # NULLs are distinct in a plain unique constraint; coalescing them to 0 makes
            # "no staff / no customer / no channel" one value, on SQLite and PostgreSQL alike.
            models.UniqueConstraint(
                "material",
                Coalesce("staff", Value(0)),
                Coalesce("customer", Value(0)),
                Coalesce("channel", Value(0)),
                name="trackedlink_one_per_target",
            ),
            models.CheckConstraint(
                condition=models.Q(customer__isnull=True) | models.Q(channel__isnull=True),
                name="trackedlink_customer_or_channel",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class MaterialView(models.Model):
    """One open of a tracked link. Reloads within the visit window reuse the visit (by its
    token); the page's beacon raises `seconds` as the reader stays."""

    link = models.ForeignKey(TrackedLink, on_delete=models.CASCADE, related_name="views")
    material = models.ForeignKey(
        Material, on_delete=models.CASCADE, related_name="views", db_index=False
    )
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    staff = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Unguessable; binds the beacon to this visit.
    token = models.CharField(max_length=32, unique=True)
    opened_at = models.DateTimeField(_("opened at"))
    seconds = models.PositiveIntegerField(_("seconds read"), default=0)
    # How much of `seconds` the link's seconds_read holds already: the follow-up adds the rest.
    seconds_counted = models.PositiveIntegerField(db_default=0)

    class FollowUp(models.IntegerChoices):
        DONE = 0
        READ = 1  # a longer read: the counters and the notification's text
        OPEN = 2  # a new open: the event too, and the notification counts it

    # What the batched follow-up (services.material_views_follow_up) still has to do for this
    # view: the public page only INSERTs the row, the worker picks pending rows up in sets.
    follow_up = models.PositiveSmallIntegerField(choices=FollowUp.choices, default=FollowUp.DONE)

    class Meta:
        verbose_name = _("material view")
        verbose_name_plural = _("material views")
        indexes = [
            models.Index(fields=["material", "opened_at"], name="materialview_material_at_idx"),
            # Small: only the views waiting for their follow-up, for a few seconds each.
            models.Index(
                fields=["id"],
                condition=models.Q(follow_up__gt=0),
                name="materialview_follow_up_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.link_id} @ {self.opened_at:%Y-%m-%d %H:%M}"
