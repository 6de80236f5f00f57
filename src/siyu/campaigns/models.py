from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.content.models import Material, Script
from siyu.customers.models import Customer
from siyu.org.models import Staff
from siyu.segments.models import Segment, SegmentSnapshot
from siyu.webhooks.models import WebhookSubscription


class ChannelName(models.TextChoices):
    EMAIL = "email", _("e-mail")
    SMS = "sms", _("SMS")
    STAFF_TASK = "staff_task", _("staff task")
    # One moments post (朋友圈) per staff member for their customers in the audience.
    STAFF_MOMENTS = "staff_moments", _("moments post by staff")
    WEBHOOK = "webhook", _("webhook")
    WECOM = "wecom", _("WeCom mass message")
    # The same message to the WeCom customer groups the audience is in (sender: each group's owner).
    WECOM_GROUP = "wecom_group", _("WeCom mass message to customer groups")


class Campaign(models.Model):
    """An SOP: who (segment), when (schedule or trigger), where and what (steps), why (goal)."""

    class Kind(models.TextChoices):
        BROADCAST = "broadcast", _("broadcast")
        RECURRING = "recurring", _("recurring")
        JOURNEY = "journey", _("journey")
        TRIGGERED = "triggered", _("triggered")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SCHEDULED = "scheduled", _("scheduled")
        RUNNING = "running", _("running")
        PAUSED = "paused", _("paused")
        CANCELLED = "cancelled", _("cancelled")
        COMPLETED = "completed", _("completed")

    class Goal(models.TextChoices):
        NONE = "", _("no goal")
        EVENT = "event", _("an event")
        PAID_ORDER = "paid_order", _("a paid order")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    owner = models.ForeignKey(Staff, on_delete=models.PROTECT, related_name="campaigns")
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    # The members a broadcast was sent to, frozen when it started.
    snapshot = models.ForeignKey(
        SegmentSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Transactional messages (an order notice) are not held by frequency caps.
    marketing = models.BooleanField(_("marketing"), default=True)

    goal = models.CharField(_("goal"), max_length=16, choices=Goal.choices, blank=True)
    goal_event_type = models.SlugField(_("goal event type"), max_length=60, blank=True)
    goal_days = models.PositiveIntegerField(_("goal window (days)"), default=7)
    goal_min_amount = models.DecimalField(
        _("minimum order amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )

    start_at = models.DateTimeField(_("start"), null=True, blank=True)
    end_at = models.DateTimeField(_("end"), null=True, blank=True)
    # Recurring: five cron fields "minute hour day month weekday" in the organisation's zone.
    schedule = models.CharField(_("schedule"), max_length=100, blank=True)
    # Triggered: {"type": "event", "event_type": "…"}, {"type": "birthday", "days_before": N}…;
    # the kinds and their checks are in campaigns/triggers.py.
    trigger = models.JSONField(_("trigger"), default=dict, blank=True)
    # Up to when triggers or schedule ticks have been planned.
    cursor = models.DateTimeField(null=True, blank=True, editable=False)
    cost = models.DecimalField(_("cost (CNY)"), max_digits=14, decimal_places=2, default=0)

    # Why it paused itself (the guardrail); empty when a person paused it.
    paused_reason = models.CharField(_("paused because"), max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        indexes = [models.Index(fields=["status", "start_at"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    """One touch of a campaign: a channel, a delay after entry (journeys) and its variants."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(_("order"), default=1)
    delay_minutes = models.PositiveIntegerField(_("delay after entry (minutes)"), default=0)
    channel = models.CharField(_("channel"), max_length=16, choices=ChannelName.choices)
    # Where a webhook step posts: the subscription's URL, signed with its secret.
    webhook = models.ForeignKey(
        WebhookSubscription, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The A/B test's outcome once a variant was promoted: winner, figures, p-value, and the
    # counts already added to the scripts' statistics (campaigns/experiments.py).
    ab_result = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["campaign", "order"]
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "order"], name="step_unique_order")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.order} {self.channel}"


class Variant(models.Model):
    """What a step sends: a script or a text of its own, and its share of the A/B split."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=20, default="A")
    weight = models.PositiveIntegerField(_("weight"), default=1)
    script = models.ForeignKey(
        Script, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    material = models.ForeignKey(
        Material, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"), blank=True)

    class Meta:
        ordering = ["step", "id"]
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        constraints = [models.UniqueConstraint(fields=["step", "name"], name="variant_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def text(self) -> str:
        return self.body or (self.script.body if self.script_id else "")


class Delivery(models.Model):
    """The outbox: one row per (step, customer, occurrence), so planning is exactly-once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        ACCEPTED = "accepted", _("accepted, result pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        SUPPRESSED = "suppressed", _("suppressed")
        CANCELLED = "cancelled", _("cancelled")

    class Reason(models.TextChoices):
        NONE = "", "-"
        OPT_OUT = "opt_out", _("opted out")
        NO_CONSENT = "no_consent", _("no consent")
        NO_ADDRESS = "no_address", _("no address for the channel")
        CAP_DAY = "cap_day", _("daily frequency cap")
        CAP_WEEK = "cap_week", _("weekly frequency cap")
        CAP_CHANNEL_DAY = "cap_channel_day", _("daily cap of the channel")
        CAP_CHANNEL_WEEK = "cap_channel_week", _("weekly cap of the channel")
        MERGED = "merged", _("customer merged into another")
        NO_CHANNEL = "no_channel", _("channel not available")
        PLATFORM_LIMIT = "platform_limit", _("platform's per-customer limit")

    # No database foreign keys on the outbox: a million-row plan would run five million
    # deferred checks at COMMIT. Campaign, step, variant and staff are fixed for a whole
    # planning statement and outlive their deliveries; the ORM still cascades on delete.
    # Nor single-column indexes on campaign and step: (campaign, status) and the unique
    # (step, customer, occurrence) lead with them, and every index costs each planned row.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_constraint=False,
        db_index=False,
    )
    step = models.ForeignKey(
        Step,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_constraint=False,
        db_index=False,
    )
    variant = models.ForeignKey(
        Variant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deliveries",
        db_constraint=False,
    )
    # Planning joins the customer table, so every row names a customer that exists; customers
    # are never deleted outside the ORM (merges keep tombstones), which cascades by itself.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
        db_constraint=False,
    )
    # The customer's owner when planned: whose name the text carries, who gets a staff task.
    staff = models.ForeignKey(
        Staff,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    # "" for one-off steps; the schedule tick or the triggering event for repeated ones.
    occurrence = models.CharField(max_length=40, blank=True, default="")
    channel = models.CharField(max_length=16, choices=ChannelName.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True, default="")
    # Why planned_for moved (quiet hours); the delivery still goes out.
    postponed = models.CharField(max_length=20, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    planned_for = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")
    rendered_text = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["step", "customer", "occurrence"], name="delivery_unique_occurrence"
            )
        ]
        indexes = [
            # What the sender claims next; finished rows stay out of the index.
            models.Index(
                fields=["channel", "planned_for"],
                name="delivery_due_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["claimed_at"],
                name="delivery_sending_idx",
                condition=models.Q(status="sending"),
            ),
            # Frequency caps and the customer timeline: what a customer was sent lately.
            models.Index(fields=["customer", "sent_at"], name="delivery_customer_sent_idx"),
            models.Index(fields=["campaign", "status"], name="delivery_campaign_idx"),
            models.Index(
                fields=["external_id"],
                name="delivery_external_idx",
                condition=models.Q(status="accepted"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step_id}/{self.customer_id}/{self.occurrence or '-'}"

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt at this delivery, and for no other delivery."""
        return idempotency_key(self.step_id, self.customer_id, self.occurrence)


def idempotency_key(step_id: int, customer_id: int, occurrence: str) -> str:
    return f"siyu-{step_id}-{customer_id}-{occurrence or '0'}"


class JourneyEnrollment(models.Model):
    class ExitReason(models.TextChoices):
        NONE = "", "-"
        GOAL = "goal", _("reached the goal")
        LEFT_SEGMENT = "left_segment", _("left the segment")
        CANCELLED = "cancelled", _("campaign cancelled")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(
        max_length=16, choices=ExitReason.choices, blank=True, default=""
    )

    class Meta:
        verbose_name = _("journey enrollment")
        verbose_name_plural = _("journey enrollments")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="enrollment_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.customer_id}"


class StaffTask(models.Model):
    """Something a person does by hand in WeCom: a 1:1 message to one customer (chat), or one
    moments post (朋友圈) for all their customers in a step's audience (moments)."""

    class Kind(models.TextChoices):
        CHAT = "chat", _("1:1 message")
        MOMENTS = "moments", _("moments post")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.CHAT)
    # Chat: the delivery the person sends. A moments post stands for many deliveries (each
    # names the task in its external id), so it is keyed by its step and occurrence instead.
    delivery = models.OneToOneField(
        Delivery, null=True, blank=True, on_delete=models.CASCADE, related_name="task"
    )
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.CASCADE, related_name="moments_tasks"
    )
    occurrence = models.CharField(max_length=40, blank=True, default="")
    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="campaign_tasks")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    text = models.TextField(_("text"))
    due_at = models.DateTimeField(_("due"))
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("staff task")
        verbose_name_plural = _("staff tasks")
        indexes = [models.Index(fields=["staff", "due_at"], name="stafftask_staff_due_idx")]
        constraints = [
            # One post per staff member per step occurrence, however many batches reach them.
            models.UniqueConstraint(
                fields=["staff", "step", "occurrence"],
                condition=models.Q(kind="moments"),
                name="stafftask_unique_moments",
            )
        ]

    def __str__(self) -> str:
        return f"{self.staff_id}: {self.customer_id or self.kind}"


class ChannelBucket(models.Model):
    """The token bucket of one channel's send rate, shared by every worker."""

    channel = models.CharField(max_length=16, primary_key=True)
    tokens = models.FloatField(default=0)
    refilled_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.channel


class Conversion(models.Model):
    """A goal reached after a sent delivery, attributed to it (last touch within the window)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="conversions")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="conversions")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    # "order:<id>" or "event:<id>": one conversion per order or event, whichever campaign wins.
    source = models.CharField(max_length=40, unique=True)
    occurred_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")
        indexes = [models.Index(fields=["campaign", "occurred_at"], name="conversion_idx")]

    def __str__(self) -> str:
        return self.source
