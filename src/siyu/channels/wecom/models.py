"""The WeCom connector's tables: the connection, the shared access token, received callbacks,
channel codes (渠道活码), customer groups and the mapping of WeCom corp tags to Siyu tags."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.channels.wecom.fields import EncryptedTextField
from siyu.content.models import Script
from siyu.customers.models import Channel, Customer
from siyu.org.models import Staff
from siyu.tags.models import Tag, TagGroup


class Connection(models.Model):
    """The organisation's WeCom corp and the 客户联系 credentials (one row)."""

    corp_id = models.CharField(_("corp id"), max_length=64)
    # The 「客户联系」 secret, or the secret of a self-built app allowed to call the API.
    # Stored encrypted (fields.py); the console never shows them back beyond the last four.
    contact_secret = EncryptedTextField(_("customer-contact secret"))
    callback_token = EncryptedTextField(_("callback token"))
    encoding_aes_key = EncryptedTextField(_("EncodingAESKey"))
    agent_id = models.CharField(_("agent id"), max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_test_at = models.DateTimeField(_("last tested"), null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("WeCom connection")
        verbose_name_plural = _("WeCom connections")

    def __str__(self) -> str:
        return self.corp_id


class AccessToken(models.Model):
    """The access token shared by every process when Redis is not configured.

    One row per (corp id, secret) fingerprint; refreshed under SELECT … FOR UPDATE so that N
    workers finding it expired call gettoken once, not N times.
    """

    key = models.CharField(max_length=64, unique=True)
    token = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key


class Callback(models.Model):
    """One decrypted callback from WeCom, stored before it is processed, so processing is
    idempotent (one row per message) and can be re-run after a failure."""

    # sha1 of the decrypted message: WeCom's retries and replays map onto the same row.
    digest = models.CharField(max_length=40, unique=True)
    nonce = models.CharField(max_length=64, db_index=True)
    timestamp = models.BigIntegerField()
    event = models.CharField(max_length=64, blank=True)
    change_type = models.CharField(max_length=64, blank=True)
    xml = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The welcome code is single use: remember it was spent so a re-run does not try again.
    welcome_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("WeCom callback")
        verbose_name_plural = _("WeCom callbacks")
        indexes = [
            models.Index(
                fields=["received_at"],
                name="wecom_callback_pending_idx",
                condition=models.Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.change_type}"

    @property
    def kind(self) -> str:
        return f"{self.event}/{self.change_type}" if self.change_type else self.event


class ChannelCode(models.Model):
    """A channel code (渠道活码): the `state` WeCom reports on each add names this code."""

    state = models.CharField(_("state"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=100)
    channel = models.ForeignKey(
        Channel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("source channel"),
    )
    staff = models.ManyToManyField(Staff, blank=True, related_name="+", verbose_name=_("staff"))
    tags = models.ManyToManyField(Tag, blank=True, related_name="+", verbose_name=_("tags"))
    welcome_script = models.ForeignKey(
        Script,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("welcome script"),
    )
    spend = models.DecimalField(_("spend (CNY)"), max_digits=14, decimal_places=2, default=0)
    # Adds per staff member per day (in the organisation's zone); 0: no cap. A member at the
    # cap leaves the WeCom contact way's user list until midnight.
    daily_cap = models.PositiveIntegerField(_("daily adds per staff member"), default=0)
    skip_verify = models.BooleanField(_("add without verification"), default=True)
    # The WeCom contact way (联系我) behind the code: API-made ways are hidden in WeCom's admin.
    config_id = models.CharField(max_length=64, blank=True)
    qr_code = models.URLField(_("QR code"), max_length=500, blank=True)
    # The staff user ids the contact way currently offers (the pool less those at their cap).
    wecom_users = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("channel code")
        verbose_name_plural = _("channel codes")

    def __str__(self) -> str:
        return self.name


class CustomerGroup(models.Model):
    """A WeCom customer group (客户群), as groupchat/get last described it."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        DISMISSED = "dismissed", _("dismissed")

    chat_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    owner_userid = models.CharField(max_length=64, blank=True)
    owner = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notice = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at_wecom = models.DateTimeField(null=True, blank=True)
    member_version = models.CharField(max_length=64, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("customer group")
        verbose_name_plural = _("customer groups")

    def __str__(self) -> str:
        return self.name or self.chat_id


class GroupMember(models.Model):
    class Type(models.IntegerChoices):
        MEMBER = 1, _("staff member")
        EXTERNAL = 2, _("external contact")

    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="members")
    userid = models.CharField(max_length=64)
    type = models.PositiveSmallIntegerField(choices=Type.choices)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    staff = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    joined_at = models.DateTimeField(null=True, blank=True)
    join_scene = models.PositiveSmallIntegerField(null=True, blank=True)
    invitor = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=30, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "userid"], name="wecom_member_unique")
        ]
        indexes = [models.Index(fields=["customer"], name="wecom_member_customer_idx")]

    def __str__(self) -> str:
        return f"{self.group_id}:{self.userid}"


class CorpTagGroup(models.Model):
    """A WeCom corp tag group and the Siyu tag group that mirrors it."""

    wecom_id = models.CharField(max_length=64, unique=True)
    tag_group = models.OneToOneField(TagGroup, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return self.wecom_id


class CorpTag(models.Model):
    """A WeCom corp tag and the Siyu tag that mirrors it."""

    wecom_id = models.CharField(max_length=64, unique=True)
    tag = models.OneToOneField(Tag, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return self.wecom_id


class SyncRun(models.Model):
    """A sync of WeCom's external contacts into Siyu, resumable from where it stopped.

    The run keeps the follow users it found at the start, the position of the next batch of
    (at most 100) of them and the batch's cursor, so a failed run continues instead of
    starting over; its counts are the progress shown in the console.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", pgettext_lazy("sync", "running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    userids = models.JSONField(default=list)
    position = models.PositiveIntegerField(default=0)
    cursor = models.CharField(max_length=200, blank=True)
    contacts = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    relationships = models.PositiveIntegerField(default=0)
    # Customer groups come after the contacts (their members are then known customers).
    groups = models.PositiveIntegerField(default=0)
    groups_done = models.BooleanField(default=False)
    # Friendships WeCom no longer lists (ended while no callback came), found after the contacts.
    ended = models.PositiveIntegerField(default=0)
    ended_done = models.BooleanField(default=False)
    # Mapped staff WeCom no longer lists as follow users (customer contact taken away, left the
    # corp): marked not following; their friendships stay as they are.
    not_following = models.JSONField(default=list, blank=True)
    # Moves with every page: a running sync whose heartbeat stopped lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("WeCom sync")
        verbose_name_plural = _("WeCom syncs")

    def __str__(self) -> str:
        return f"sync {self.pk} {self.status}"

    @property
    def staff_done(self) -> int:
        return min(self.position, len(self.userids))


class Transfer(models.Model):
    """Customers handed from one staff member to another through WeCom (在职/离职继承)."""

    handover = models.ForeignKey(Staff, on_delete=models.PROTECT, related_name="+")
    takeover = models.ForeignKey(Staff, on_delete=models.PROTECT, related_name="+")
    resigned = models.BooleanField(_("handover has left"), default=False)
    # The handover's customer groups go to the takeover at once (groupchat/transfer for a
    # departed member, groupchat/onjob_transfer for an active one when asked).
    groups = models.PositiveIntegerField(default=0)
    groups_moved = models.PositiveIntegerField(default=0)
    # The groups WeCom did not move: [{"chat_id", "errcode", "errmsg"}].
    groups_failed = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("customer transfer")
        verbose_name_plural = _("customer transfers")

    def __str__(self) -> str:
        return f"{self.handover_id}→{self.takeover_id}"


class TransferItem(models.Model):
    """One customer of a transfer; WeCom completes a transfer after the customer's 24 hours."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("waiting")
        DONE = "done", _("transferred")
        REFUSED = "refused", _("refused by the customer")
        LIMIT = "limit", _("takeover at the limit")
        FAILED = "failed", _("not started")

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    external_userid = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    errcode = models.IntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["transfer", "external_userid"], name="wecom_transfer_item_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["transfer"],
                name="wecom_transfer_waiting_idx",
                condition=models.Q(status="waiting"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.transfer_id}:{self.external_userid}"


class MassMessage(models.Model):
    """A WeCom mass-message task (add_msg_template) made for campaign deliveries: one per sender
    staff member and text. Its deliveries carry the msgid as external_id until the poller
    settles them from get_groupmsg_send_result."""

    msgid = models.CharField(max_length=100, unique=True)
    # "single": to customers (deliveries carry the msgid); "group": to customer groups
    # (deliveries carry "msgid:chat_id", the group that reaches the customer).
    chat_type = models.CharField(max_length=8, default="single")
    sender_userid = models.CharField(max_length=64)
    staff = models.ForeignKey(Staff, null=True, on_delete=models.SET_NULL, related_name="+")
    recipients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    polled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="wecom_mass_open_idx",
                condition=models.Q(finished_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return self.msgid


class SyncSeen(models.Model):
    """A friendship a sync run read from WeCom; what a run did not see has ended. Kept only
    while the run lasts (resumes included)."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="+")
    staff_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "staff_id", "customer_id"], name="wecom_sync_seen_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.staff_id}:{self.customer_id}"


class FollowStatus(models.Model):
    """Whether WeCom lists a staff member as a follow user (has customer contact), as the last
    sync found. A member no longer listed keeps their friendships in Siyu (WeCom keeps the
    customers until they are transferred) but sends no mass messages."""

    staff = models.OneToOneField(
        Staff, primary_key=True, on_delete=models.CASCADE, related_name="wecom_follow"
    )
    following = models.BooleanField(default=True)
    changed_at = models.DateTimeField()
    checked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.staff_id}:{self.following}"


class CorpTagOp(models.Model):
    """A change to a mirrored tag or tag group to make in WeCom (add/edit/del_corp_tag), queued
    in the transaction that changed it in Siyu and pushed by the worker in order; kept pending
    while WeCom is unreachable, failed with WeCom's answer when WeCom refuses."""

    class Kind(models.TextChoices):
        CREATE_GROUP = "create_group", _("create tag group")
        CREATE_TAG = "create_tag", _("create tag")
        RENAME = "rename", _("rename")
        DELETE = "delete", _("delete")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    tag_group = models.ForeignKey(
        TagGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # What a delete removes (the link is gone with the Siyu tag): a WeCom tag or group id.
    wecom_id = models.CharField(max_length=64, blank=True)
    is_group = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                name="wecom_corptagop_pending_idx",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.wecom_id or self.tag_id or self.tag_group_id}"


class TagMark(models.Model):
    """A customer whose mirrored corp tag was put on or taken off in Siyu: the worker makes
    WeCom match (mark_tag on each of the customer's friendships) as Siyu has it when it runs,
    so a tag added and removed again before the push costs nothing wrong. One row per
    (customer, tag); queuing again moves queued_at, which tells the worker the row changed."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    corp_tag = models.ForeignKey(CorpTag, on_delete=models.CASCADE, related_name="+")
    queued_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "corp_tag"], name="wecom_tagmark_unique")
        ]
        indexes = [models.Index(fields=["queued_at"], name="wecom_tagmark_queued_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.corp_tag_id}"


class MassMessageChat(models.Model):
    """A customer group a group mass message goes to: one row per (task, group). A step's
    message reaches a group once a day however many of its members are in the audience."""

    message = models.ForeignKey(MassMessage, on_delete=models.CASCADE, related_name="chats")
    chat_id = models.CharField(max_length=64)
    step_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField()
    # get_groupmsg_send_result's status: 0 unsent, 1 sent, 2 not sendable, 3 over the limit.
    status = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "chat_id"], name="wecom_masschat_unique")
        ]
        indexes = [models.Index(fields=["step_id", "chat_id"], name="wecom_masschat_step_idx")]

    def __str__(self) -> str:
        return f"{self.message_id}:{self.chat_id}"
