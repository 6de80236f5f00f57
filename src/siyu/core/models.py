from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditLog(models.Model):
    """Who viewed, exported, merged, deleted or transferred which personal data, and when."""

    class Action(models.TextChoices):
        VIEW_PII = "view_pii", _("viewed personal data")
        REVEAL = "reveal", _("revealed an identifier")
        EXPORT = "export", _("exported")
        IMPORT = "import", _("imported")
        MERGE = "merge", _("merged")
        DELETE = "delete", _("deleted")
        TRANSFER = "transfer", _("transferred")
        UPDATE = "update", _("updated")
        CREATE = "create", _("created")
        REVOKE = "revoke", _("revoked")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["actor", "-id"]),
            models.Index(fields=["action", "-id"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_id} {self.action} {self.target_type}"


class ApiKey(models.Model):
    """A credential for the REST API. Only the SHA-256 of the full key is kept; the key itself
    is shown once, when it is created. A key tied to a staff member reads what that member
    sees in the console; one tied to nobody reads as an admin does, for trusted back-office
    systems only."""

    class Scope(models.TextChoices):
        INGEST = "ingest", _("ingest events")
        READ = "read", _("read")
        ADMIN = "admin", _("administer")

    name = models.CharField(_("name"), max_length=100)
    # The public part of the key ("siyu_<prefix>_<secret>"), shown in lists and used to find it
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(_("scopes"), default=list)
    # Deleted with the member: a key must never outlive its scope and read as an admin.
    staff = models.ForeignKey(
        "org.Staff",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("reads as"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"
