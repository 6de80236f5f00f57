from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.org.models import Staff, Store


class Channel(models.Model):
    """A source the brand gets customers from: a public platform, a store, a referral."""

    class Kind(models.TextChoices):
        PUBLIC = "public", _("public domain")
        PRIVATE = "private", _("private domain")
        OFFLINE = "offline", _("offline")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.PUBLIC)
    spend = models.DecimalField(_("spend (CNY)"), max_digits=14, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("source channel")
        verbose_name_plural = _("source channels")

    def __str__(self) -> str:
        return self.name


class CustomerQuerySet(models.QuerySet):
    def live(self):
        return self.filter(merged_into__isnull=True)


class Customer(models.Model):
    """One real person (OneID). A merged-away customer stays as a tombstone."""

    class Gender(models.TextChoices):
        UNKNOWN = "", _("unknown")
        MALE = "m", _("male")
        FEMALE = "f", _("female")

    class Stage(models.TextChoices):
        LEAD = "lead", _("lead")
        CONTACT = "contact", _("contact")
        ENGAGED = "engaged", _("engaged")
        FIRST_PURCHASE = "first_purchase", _("first purchase")
        REPEAT = "repeat", _("repeat buyer")
        MEMBER = "member", _("member")
        AT_RISK = "at_risk", _("at risk")
        LOST = "lost", _("lost")

    class RfmGroup(models.TextChoices):
        NONE = "", _("no paid orders")
        CHAMPIONS = "champions", _("champions")
        LOYAL = "loyal", _("loyal")
        POTENTIAL_LOYALISTS = "potential_loyalists", _("potential loyalists")
        NEW_CUSTOMERS = "new_customers", _("new customers")
        PROMISING = "promising", _("promising")
        NEED_ATTENTION = "need_attention", _("need attention")
        ABOUT_TO_SLEEP = "about_to_sleep", _("about to sleep")
        AT_RISK = "at_risk", _("at risk")
        CANNOT_LOSE_THEM = "cannot_lose_them", _("cannot lose them")
        HIBERNATING = "hibernating", _("hibernating")
        LOST = "lost", _("lost")

    # Basic attributes (基础属性)
    name = models.CharField(_("name"), max_length=100, blank=True)
    name_pinyin = models.CharField(max_length=200, blank=True, editable=False)
    name_initials = models.CharField(max_length=50, blank=True, editable=False)
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender.choices, blank=True, default=""
    )
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    province = models.CharField(_("province"), max_length=30, blank=True)
    city = models.CharField(_("city"), max_length=30, blank=True)
    # The primary mobile, denormalised from the phone identities for lists and tail search.
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    phone_tail = models.CharField(max_length=4, blank=True, editable=False)

    # Ownership and source
    # No single-column index on these three foreign keys (nor on merged_into): the (key, -id)
    # and partial indexes in Meta serve the same lookups, and every index costs each insert.
    owner = models.ForeignKey(
        Staff,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
        db_index=False,
    )
    store = models.ForeignKey(
        Store,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
        db_index=False,
    )
    first_channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    first_seen_at = models.DateTimeField(_("first seen"), db_index=True)
    stage = models.CharField(
        _("lifecycle stage"), max_length=20, choices=Stage.choices, default=Stage.LEAD
    )

    # RFM, written set-based by siyu.segments.rfm.rfm_recompute (docs/rfm.md).
    # The last paid order, not "days since": recency moves every day for everyone, and writing
    # it back daily would rewrite every buyer's row. Scores use the days as of the recompute.
    rfm_last_paid_at = models.DateTimeField(_("last paid order"), null=True, blank=True)
    rfm_frequency = models.IntegerField(_("paid orders in the RFM window"), default=0)
    rfm_monetary = models.DecimalField(
        _("paid amount in the RFM window"), max_digits=14, decimal_places=2, default=0
    )
    rfm_r = models.PositiveSmallIntegerField(_("R score"), null=True, blank=True)
    rfm_f = models.PositiveSmallIntegerField(_("F score"), null=True, blank=True)
    rfm_m = models.PositiveSmallIntegerField(_("M score"), null=True, blank=True)
    rfm_group = models.CharField(
        _("RFM group"), max_length=24, choices=RfmGroup.choices, blank=True, default=""
    )
    is_super_user = models.BooleanField(_("super user"), default=False)

    # Consent (PIPL): None means never asked.
    consent_sms = models.BooleanField(_("SMS consent"), null=True, blank=True)
    consent_email = models.BooleanField(_("e-mail consent"), null=True, blank=True)

    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="absorbed",
        db_index=False,  # customer_merged_idx (partial): only merged customers have one
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [("view_full_pii", "Can see full phone numbers and identifiers")]
        indexes = [
            models.Index(fields=["owner", "-id"], name="customer_owner_idx"),
            models.Index(fields=["store", "-id"], name="customer_store_idx"),
            models.Index(fields=["first_channel", "-id"], name="customer_channel_idx"),
            models.Index(fields=["stage", "-id"], name="customer_stage_idx"),
            models.Index(fields=["phone_tail"], name="customer_phone_tail_idx"),
            models.Index(fields=["rfm_group"], name="customer_rfm_group_idx"),
            models.Index(fields=["rfm_r", "rfm_f"], name="customer_rfm_rf_idx"),
            models.Index(
                fields=["name"], name="customer_name_idx", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(
                fields=["name_pinyin"],
                name="customer_pinyin_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["name_initials"],
                name="customer_initials_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["merged_into"],
                name="customer_merged_idx",
                condition=models.Q(merged_into__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"

    @property
    def is_live(self) -> bool:
        return self.merged_into_id is None


class Identity(models.Model):
    """One identifier of a person; (kind, namespace, value) points at exactly one customer."""

    class Kind(models.TextChoices):
        PHONE = "phone", _("mobile phone")
        EMAIL = "email", _("e-mail")
        WECOM_EXTERNAL = "wecom_external_userid", _("WeCom external user id")
        WECHAT_UNIONID = "wechat_unionid", _("WeChat unionid")
        WECHAT_OPENID = "wechat_openid", _("WeChat openid")
        TMALL = "tmall_buyer", _("Tmall/Taobao buyer id")
        JD = "jd_buyer", _("JD buyer id")
        DOUYIN = "douyin_buyer", _("Douyin buyer id")
        XIAOHONGSHU = "xiaohongshu_buyer", _("Xiaohongshu buyer id")
        MEMBER_NO = "store_member_no", _("store member number")

    # identity_customer_idx (customer, kind) serves lookups by customer: no index of its own.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    # The WeChat app id for openids; empty for kinds that are global.
    namespace = models.CharField(_("namespace"), max_length=64, blank=True, default="")
    value = models.CharField(_("value"), max_length=191)
    # Not indexed: only deleting a channel looks identities up by it, and every index costs
    # each identity an import creates.
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "namespace", "value"], name="identity_unique_value"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "kind"], name="identity_customer_idx"),
            models.Index(fields=["value"], name="identity_value_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Relationship(models.Model):
    """A staff member ↔ customer friendship (WeCom follow user)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        REMOVED = "removed", _("removed")

    class RemovedBy(models.TextChoices):
        CUSTOMER = "customer", _("customer deleted or blocked staff")
        STAFF = "staff", _("staff removed customer")
        TRANSFER = "transfer", _("transferred")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="relationships")
    staff = models.ForeignKey(Staff, on_delete=models.PROTECT, related_name="relationships")
    added_at = models.DateTimeField(_("added"))
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(_("channel code state"), max_length=64, blank=True)
    remark = models.CharField(_("remark"), max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)
    removed_by = models.CharField(max_length=16, choices=RemovedBy.choices, blank=True)

    class Meta:
        verbose_name = _("relationship")
        verbose_name_plural = _("relationships")
        constraints = [
            models.UniqueConstraint(fields=["staff", "customer"], name="relationship_unique"),
        ]
        indexes = [
            models.Index(fields=["customer", "staff"], name="relationship_customer_idx"),
            models.Index(
                fields=["removed_at"],
                name="relationship_removed_idx",
                condition=models.Q(removed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.staff_id}↔{self.customer_id}"


class MergeRecord(models.Model):
    """One customer absorbed into another, and what moved with it."""

    survivor = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges")
    absorbed = models.OneToOneField(
        Customer, on_delete=models.PROTECT, related_name="merged_record"
    )
    merged_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=200, blank=True)
    moved = models.JSONField(default=dict)
    absorbed_snapshot = models.JSONField(default=dict)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("merge record")
        verbose_name_plural = _("merge records")

    def __str__(self) -> str:
        return f"{self.absorbed_id}→{self.survivor_id}"
