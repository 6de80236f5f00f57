from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def default_friend_cap() -> int:
    return settings.SIYU_FRIEND_CAP_DEFAULT


class Store(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    city = models.CharField(_("city"), max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100)
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="teams"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class Staff(models.Model):
    """A member of the brand's team: a login, a role, a store and a persona (人设)."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("admin")
        MANAGER = "manager", _("manager")
        STAFF = "staff", _("staff")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        RESIGNED = "resigned", _("resigned")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff"
    )
    name = models.CharField(_("name"), max_length=50)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.STAFF)
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    wecom_userid = models.CharField(
        _("WeCom user id"), max_length=64, null=True, blank=True, unique=True
    )
    nickname = models.CharField(_("nickname"), max_length=50, blank=True)
    avatar_url = models.URLField(_("avatar"), blank=True)
    signature = models.CharField(_("signature"), max_length=200, blank=True)
    introduction = models.TextField(_("introduction"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    friend_cap = models.PositiveIntegerField(_("friend cap"), default=default_friend_cap)
    can_view_pii = models.BooleanField(
        _("may see full phone numbers"),
        default=False,
        help_text=_("Admins always may; others see masked identifiers unless this is set."),
    )
    joined_at = models.DateField(_("joined"), null=True, blank=True)
    resigned_at = models.DateField(_("resigned"), null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        indexes = [models.Index(fields=["store", "status"])]

    def __str__(self) -> str:
        return self.nickname or self.name

    @property
    def sees_full_pii(self) -> bool:
        return self.role == self.Role.ADMIN or self.can_view_pii
