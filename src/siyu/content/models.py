from django.core.validators import FileExtensionValidator
from django.db import models
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
    usage_count = models.PositiveIntegerField(_("times used"), default=0)
    reply_count = models.PositiveIntegerField(_("replies"), default=0)  # filled by campaigns
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
