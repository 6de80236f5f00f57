from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from siyu.customers.models import Channel

# A chunk commits every few seconds; this long without one means the job's process is gone.
STALLED_AFTER = timedelta(minutes=10)


class SavedMapping(models.Model):
    """A column mapping the user saved for files that no built-in preset recognises."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=16)
    columns = models.JSONField(_("columns"), help_text=_("target field → column header"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("saved mapping")
        verbose_name_plural = _("saved mappings")

    def __str__(self) -> str:
        return self.name


class ImportJob(models.Model):
    """One file poured into the pool: what it was, how it was read, and what it did."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customer", _("customers")
        ORDERS = "order", _("orders")
        TAGS = "tag", _("tags")

    class State(models.TextChoices):
        UPLOADED = "uploaded", _("uploaded")
        PREVIEWED = "previewed", _("previewed")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        ROLLED_BACK = "rolled_back", _("rolled back")

    # A started job that has stopped (or stalled) can be rolled back.
    STOPPED = (State.DONE, State.FAILED, State.CANCELLED)

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # A tags file only labels existing customers, so it need not name a source.
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    file = models.CharField(_("file"), max_length=500)
    original_name = models.CharField(_("file name"), max_length=255)
    file_sha256 = models.CharField(max_length=64, db_index=True)
    encoding = models.CharField(_("encoding"), max_length=32, blank=True)
    sheet = models.CharField(_("sheet"), max_length=100, blank=True)
    preset = models.CharField(_("preset"), max_length=64, blank=True)
    columns = models.JSONField(_("column mapping"), default=dict, blank=True)
    tag = models.CharField(
        _("tag for every row"), max_length=101, blank=True, help_text=_("tags imports: group:tag")
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.UPLOADED)
    message = models.TextField(_("message"), blank=True)
    # The process running the job claims it, and proves it alive with each chunk it commits;
    # a running job without a heartbeat for STALLED_AFTER lost its process (see `stalled`).
    runner = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    rows_total = models.PositiveIntegerField(default=0, help_text="estimated, for progress")
    rows_read = models.PositiveIntegerField(default=0)
    # Rows whose effects are committed: a resumed job starts after them.
    rows_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    orders_created = models.PositiveIntegerField(default=0)
    orders_updated = models.PositiveIntegerField(default=0)
    preview = models.JSONField(default=dict, blank=True)
    error_report = models.CharField(max_length=500, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")

    def __str__(self) -> str:
        return f"{self.kind} {self.original_name}"

    @property
    def counts(self) -> dict[str, int]:
        """Rows read, then the people (created, matched …); an orders file's orders too."""
        orders = {}
        if self.kind == self.Kind.ORDERS:
            orders = {"orders_created": self.orders_created, "orders_updated": self.orders_updated}
        return {
            "rows_read": self.rows_read,
            **orders,
            "created": self.created,
            "matched": self.matched,
            "merged": self.merged,
            "invalid": self.invalid,
            "skipped": self.skipped,
        }

    @property
    def stalled(self) -> bool:
        """Running, yet nothing committed for STALLED_AFTER: the worker was killed or restarted
        mid-job. Such a job can be resumed or rolled back; its lost process can no longer
        commit (its claim is taken from it)."""
        return self.state == self.State.RUNNING and (
            self.heartbeat_at is None or self.heartbeat_at < timezone.now() - STALLED_AFTER
        )

    @property
    def preview_failed(self) -> bool:
        """The preview stopped on the file (it does not read to the end): starting the job
        would only load the rows before the fault, so it cannot be started."""
        return self.state == self.State.FAILED and self.started_at is None

    @property
    def can_start(self) -> bool:
        """Whether import_job_start would queue the job now (as startable_q)."""
        return (
            self.state == self.State.PREVIEWED
            or (self.state == self.State.FAILED and not self.preview_failed)
            or self.stalled
        )

    @classmethod
    def startable_q(cls) -> Q:
        """Previewed jobs, failed ones to resume after their last chunk, and stalled ones."""
        return (
            Q(state=cls.State.PREVIEWED)
            | Q(state=cls.State.FAILED, started_at__isnull=False)
            | cls.stalled_q()
        )

    @property
    def can_roll_back(self) -> bool:
        """Whether import_job_rollback would roll the job back now."""
        return self.started_at is not None and (self.state in self.STOPPED or self.stalled)

    @classmethod
    def stalled_q(cls) -> Q:
        return Q(state=cls.State.RUNNING) & (
            Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=timezone.now() - STALLED_AFTER)
        )

    @property
    def failed_rows(self) -> int:
        """Rows in the error report: a tags job's skipped rows only had their tags already."""
        return self.invalid + (0 if self.kind == self.Kind.TAGS else self.skipped)


class ImportRowError(models.Model):
    """A row that did not load, kept with the job so a resumed job's report stays whole."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row = models.PositiveIntegerField()
    values = models.JSONField(default=list)
    errors = models.JSONField(default=list)  # [{"column", "reason", "value"}]

    class Meta:
        indexes = [models.Index(fields=["job", "row"], name="importrowerror_job_idx")]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.row}"


class ImportedRange(models.Model):
    """A block of rows one chunk of a job inserted, so the job can be rolled back."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="ranges")
    model = models.CharField(max_length=64)
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.model} {self.first_id}–{self.last_id}"
