"""`siyu import` (the import_file command): what an operator types and what they read back."""

import io
import re
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from siyu.commerce.models import Order, OrderItem
from siyu.customers.models import Customer, Identity
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import ChannelFactory
from siyu.imports import services
from siyu.imports.loader import resolve_rows
from siyu.imports.models import ImportJob, SavedMapping
from siyu.imports.tests.files import write_csv
from siyu.imports.tests.test_jobs import TAOBAO as TAOBAO_HEADER
from siyu.imports.tests.test_jobs import TAOBAO_ROWS

MEMBERS = [
    ["姓名", "手机号", "性别", "生日", "城市"],
    ["张伟", "13800000001", "男", "1990-01-02", "杭州"],
    ["李娜", "13800000002", "女", "1991/2/3", "上海"],
    ["李娜", "+86 138 0000 0002", "女", "", ""],  # the same person again: matched
    ["王芳", "139****0003", "女", "", ""],  # masked phone only: skipped
    ["赵磊", "13800000004", "男", "1990-13-45", ""],  # no such date: invalid
    ["陈静", "13800000005", "", "", "成都"],
]
MEMBERS_COUNTS = "rows_read 6, created 3, matched 1, merged 0, invalid 1, skipped 1"

TAOBAO = [TAOBAO_HEADER, *TAOBAO_ROWS]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test's stored copies and error reports stay in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def tmall(db):
    return ChannelFactory(code="tmall", name="天猫")


@pytest.fixture
def members(tmp_path):
    return write_csv(tmp_path / "members.csv", MEMBERS, bom=True)


@pytest.fixture
def taobao_orders(tmp_path):
    return write_csv(tmp_path / "orders.csv", TAOBAO, bom=True)


def siyu_import(*args, stdout=None) -> str:
    """Run the command as `siyu import ARGS` would; return what it printed."""
    out = stdout if stdout is not None else io.StringIO()
    call_command("import_file", *map(str, args), stdout=out)
    return out.getvalue()


def small_chunks(monkeypatch) -> None:
    """Two rows per committed chunk, so a six-row file loads in three."""
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "SQLITE_CHUNK_ROWS", 2)


def before_chunk(monkeypatch, number: int, action) -> None:
    """Call `action()` when the import starts on its `number`th chunk (1-based)."""
    unpatched, started = services.resolve_rows, []

    def resolve_rows_after_action(*args, **kwargs):
        started.append(1)
        if len(started) == number:
            action()
        return unpatched(*args, **kwargs)

    monkeypatch.setattr(services, "resolve_rows", resolve_rows_after_action)


def phones() -> set[str]:
    return set(Customer.objects.values_list("phone", flat=True))


def test_a_member_list_loads_with_its_channel_as_source_and_prints_the_summary(
    tmall, members, media
):
    printed = siyu_import("customers", members, "--channel", "tmall")

    job = ImportJob.objects.get()
    report = next((media / "imports").glob("*.errors.csv"))
    assert printed.splitlines() == [
        f"Job {job.pk} done: {MEMBERS_COUNTS}",
        f"Rows that did not load: {report}",
    ]
    assert phones() == {"+8613800000001", "+8613800000002", "+8613800000005"}
    assert {c.first_channel for c in Customer.objects.all()} == {tmall}
    assert Customer.objects.get(phone="+8613800000002").city == "上海"
    report_text = report.read_text(encoding="utf-8-sig")
    assert "139****0003" in report_text and "1990-13-45" in report_text


def test_a_taobao_order_export_loads_its_orders_and_buyers(tmall, taobao_orders):
    printed = siyu_import("orders", taobao_orders, "--channel", "tmall")

    job = ImportJob.objects.get()
    # Three orders; two buyers (tb_zhang twice, so matched once, and tb_new).
    assert printed.splitlines() == [
        f"Job {job.pk} done: rows_read 3, orders_created 3, orders_updated 0, "
        "created 2, matched 1, merged 0, invalid 0, skipped 0"
    ]
    assert (job.kind, job.preset) == (ImportJob.Kind.ORDERS, "taobao_orders")
    orders = Order.objects.filter(channel=tmall).order_by("external_id")
    assert [(o.external_id, str(o.amount), o.status) for o in orders] == [
        ("T1", "1299.00", "completed"),
        ("T2", "99.00", "paid"),
        ("T3", "59.90", "pending"),
    ]
    zhang = Identity.objects.get(kind="tmall_buyer", value="tb_zhang").customer
    assert {o.customer for o in orders[:2]} == {zhang}
    assert OrderItem.objects.get(order__external_id="T2").quantity == 2


def test_a_dry_run_prints_exact_counts_and_loads_nothing(tmall, members, taobao_orders):
    members_printed = siyu_import("customers", members, "--channel", "tmall", "--dry-run")
    orders_printed = siyu_import("orders", taobao_orders, "--channel", "tmall", "--dry-run")

    assert members_printed.splitlines() == [
        "Would import: created 3, matched 1, merged 0, invalid 1, skipped 1"
    ]
    assert orders_printed.splitlines() == [
        "Would import: orders_created 3, orders_updated 0, "
        "created 2, matched 1, merged 0, invalid 0, skipped 0"
    ]
    assert not Customer.objects.exists() and not Identity.objects.exists()
    assert not Order.objects.exists() and not OrderItem.objects.exists()


def test_a_saved_mapping_names_the_columns_of_a_file_no_preset_recognises(tmall, tmp_path):
    path = write_csv(
        tmp_path / "store.csv",
        [["客户称呼", "联络号码", "所在地"], ["周杰", "13800000007", "南京"]],
    )
    with pytest.raises(CommandError, match="do not match any known export"):
        siyu_import("customers", path, "--channel", "tmall")
    SavedMapping.objects.create(
        name="门店登记表",
        kind=ImportJob.Kind.CUSTOMERS,
        columns={"name": "客户称呼", "phone": "联络号码", "city": "所在地"},
    )

    printed = siyu_import("customers", path, "--channel", "tmall", "--mapping", "门店登记表")

    assert printed.splitlines() == [
        f"Job {ImportJob.objects.get().pk} done: "
        "rows_read 1, created 1, matched 0, merged 0, invalid 0, skipped 0"
    ]
    zhou = Customer.objects.get()
    assert (zhou.name, zhou.phone, zhou.city) == ("周杰", "+8613800000007", "南京")


def test_an_unknown_channel_is_refused_with_the_codes_that_exist(tmall, members):
    ChannelFactory(code="jd")

    with pytest.raises(CommandError) as refused:
        siyu_import("customers", members, "--channel", "taobao")

    assert str(refused.value) == "unknown channel 'taobao'; channels: jd, tmall"
    assert not ImportJob.objects.exists()


def test_a_missing_file_is_refused_with_its_name(tmall, tmp_path):
    missing = tmp_path / "nowhere.csv"

    with pytest.raises(CommandError) as refused:
        siyu_import("customers", missing, "--channel", "tmall")

    assert str(refused.value) == f"no such file: {missing}"
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    "args",
    [[], ["customers"], ["customers", "members.csv"]],
    ids=["nothing", "no file", "no channel"],
)
def test_without_kind_file_and_channel_the_command_says_what_to_give(tmall, args):
    with pytest.raises(CommandError) as refused:
        siyu_import(*args)

    assert str(refused.value) == "give KIND FILE --channel CODE, or --resume/--rollback JOB"


@pytest.mark.parametrize("option", ["--resume", "--rollback"])
@pytest.mark.parametrize("job_id", [424242, 0])
def test_resuming_or_rolling_back_a_job_that_does_not_exist_is_refused(db, option, job_id):
    with pytest.raises(CommandError) as refused:
        siyu_import(option, job_id)

    assert str(refused.value) == f"no import job {job_id}"


def test_a_later_export_updates_the_orders_it_repeats_and_says_how_many(tmall, tmp_path):
    first = write_csv(tmp_path / "march.csv", TAOBAO)
    siyu_import("orders", first, "--channel", "tmall")
    refunded = [*TAOBAO[:2], [*TAOBAO[2][:-1], "99"], TAOBAO[3]]  # T2 refunded since
    later = write_csv(tmp_path / "april.csv", refunded)

    printed = siyu_import("orders", later, "--channel", "tmall")

    assert "orders_created 0, orders_updated 1, created 0, matched 3" in printed
    assert Order.objects.get(external_id="T2").status == "refunded"


def test_a_finished_or_rolled_back_job_is_not_resumed_and_a_dry_run_never_resumes(tmall, members):
    siyu_import("customers", members, "--channel", "tmall")
    job = ImportJob.objects.get()

    with pytest.raises(CommandError, match=f"job {job.pk} is done: nothing to resume"):
        siyu_import("--resume", job.pk)
    with pytest.raises(CommandError, match="cannot resume"):
        siyu_import("--resume", job.pk, "--dry-run")
    siyu_import("--rollback", job.pk)
    with pytest.raises(CommandError, match="nothing to resume"):
        siyu_import("--resume", job.pk)
    job.refresh_from_db()
    assert job.state == ImportJob.State.ROLLED_BACK and not Customer.objects.exists()


def test_a_mapping_that_is_neither_saved_nor_a_preset_or_of_another_kind_is_refused(tmall, members):
    SavedMapping.objects.create(name="订单表", kind=ImportJob.Kind.ORDERS, columns={})

    with pytest.raises(CommandError) as unknown:
        siyu_import("customers", members, "--channel", "tmall", "--mapping", "门店表")
    with pytest.raises(CommandError) as other_kind:
        siyu_import("customers", members, "--channel", "tmall", "--mapping", "订单表")

    assert "'门店表'" in str(unknown.value) and "saved mappings: 订单表" in str(unknown.value)
    assert "member_list" in str(unknown.value)  # the presets are named too
    assert str(other_kind.value) == "saved mapping '订单表' is for order files"
    assert not ImportJob.objects.exists()


def test_rolling_back_a_finished_job_removes_what_it_added_and_says_what(tmall, members):
    known = customer_resolve(identifiers=[("phone", "13800000001")]).customer
    siyu_import("customers", members, "--channel", "tmall")
    job = ImportJob.objects.get()
    assert len(phones()) == 3

    printed = siyu_import("--rollback", job.pk)

    assert printed.splitlines() == [
        f"Job {job.pk}: rolled back: 2 customers, 2 identities, 0 orders and 0 tag assignments "
        "removed; 0 customers kept because they have other data"
    ]
    assert list(Customer.objects.all()) == [known]  # known before the import: kept
    assert Identity.objects.get().customer == known
    job.refresh_from_db()
    assert job.state == ImportJob.State.ROLLED_BACK
    with pytest.raises(CommandError, match="rolled back already"):
        siyu_import("--rollback", job.pk)


def test_a_job_that_failed_midway_resumes_to_the_counts_of_an_uninterrupted_import(
    tmall, members, monkeypatch
):
    # The same file imported in one go, then undone so the pool is empty again.
    with transaction.atomic():
        uninterrupted = siyu_import("customers", members, "--channel", "tmall")
        uninterrupted_phones = phones()
        transaction.set_rollback(True)
    assert not Customer.objects.exists()
    small_chunks(monkeypatch)

    def disk_full():
        raise OSError(28, "No space left on device")

    before_chunk(monkeypatch, 2, disk_full)
    failed_output = io.StringIO()
    with pytest.raises(CommandError) as refused:
        siyu_import("customers", members, "--channel", "tmall", stdout=failed_output)
    job = ImportJob.objects.get()
    assert str(refused.value) == (
        f"import failed: once the reason above is fixed, resume with --resume {job.pk}, "
        f"or remove what it added with --rollback {job.pk}"
    )
    assert failed_output.getvalue().splitlines() == [
        f"Job {job.pk} failed: rows_read 2, created 2, matched 0, merged 0, invalid 0, skipped 0",
        "Reason: [Errno 28] No space left on device",
    ]
    monkeypatch.setattr(services, "resolve_rows", resolve_rows)  # the disk has room again

    resumed = siyu_import("--resume", job.pk)

    summary = resumed.splitlines()[0]
    assert summary == f"Job {job.pk} done: {MEMBERS_COUNTS}"
    assert summary.split(":")[1] == uninterrupted.splitlines()[0].split(":")[1]
    assert phones() == uninterrupted_phones
    assert Identity.objects.count() == 3  # nothing loaded twice


class Terminal(io.StringIO):
    """What the command writes to when an operator runs it in a terminal."""

    def isatty(self) -> bool:
        return True


def test_in_a_terminal_a_progress_bar_shows_rows_per_second_and_the_time_remaining(
    tmall, members, monkeypatch
):
    screen = Terminal()  # an xterm 100 columns wide
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    # Midway, after two of three chunks: rows 4 of 6, the rate, time elapsed, time remaining.
    midway = re.compile(r"4/6\s+[\d,]+ rows/s\s+\d+:\d\d:\d\d\s+\d+:\d\d:\d\d")

    def wait_for_the_bar_to_redraw():
        deadline = time.monotonic() + 5
        while not midway.search(ANSI.sub("", screen.getvalue())):
            if time.monotonic() > deadline:
                return  # the assertion below shows what was drawn
            time.sleep(0.02)

    small_chunks(monkeypatch)
    before_chunk(monkeypatch, 3, wait_for_the_bar_to_redraw)

    siyu_import("customers", members, "--channel", "tmall", stdout=screen)

    drawn = ANSI.sub("", screen.getvalue())
    # At the start there is no rate yet and no estimate.
    assert "members.csv" in drawn and "0/6" in drawn and "-:--:--" in drawn
    assert midway.search(drawn), drawn
    assert f"Job {ImportJob.objects.get().pk} done: {MEMBERS_COUNTS}" in drawn


def test_a_file_with_only_a_header_ends_done_with_zero_rows_read(tmall, tmp_path):
    path = write_csv(tmp_path / "empty.csv", [MEMBERS[0]])

    printed = siyu_import("customers", path, "--channel", "tmall")

    job = ImportJob.objects.get()
    assert job.state == ImportJob.State.DONE
    assert printed.splitlines() == [
        f"Job {job.pk} done: rows_read 0, created 0, matched 0, merged 0, invalid 0, skipped 0"
    ]
    assert not Customer.objects.exists()
