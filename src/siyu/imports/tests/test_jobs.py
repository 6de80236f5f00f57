"""Import jobs end to end: parse, resolve through OneID, load set-based, resume, report."""

import csv
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from siyu.commerce.models import Order, OrderItem
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Customer, Identity, MergeRecord
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import ChannelFactory
from siyu.imports import readers, services
from siyu.imports.models import STALLED_AFTER, ImportJob
from siyu.imports.readers import ImportFileError
from siyu.imports.services import (
    import_job_cancel,
    import_job_create,
    import_job_preview,
    import_job_rollback,
    import_job_run,
    import_job_start,
)
from siyu.imports.tests.files import write_xlsx

MEMBERS = ["姓名", "手机号", "性别", "生日", "城市"]


def write(path, header, rows):
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def tmall(db):
    return ChannelFactory(code="tmall", name="天猫")


@pytest.fixture
def members(tmp_path):
    """Five people, one twice, one masked-only, one with a bad birthday."""
    return write(
        tmp_path / "members.csv",
        MEMBERS,
        [
            ["张伟", "13800000001", "男", "1990-01-02", "杭州"],
            ["李娜", "13800000002", "女", "1991/2/3", "上海"],
            ["李娜", "+86 138 0000 0002", "女", "", ""],  # the same person again
            ["王芳", "139****0003", "女", "", ""],  # masked: no identity to load
            ["赵磊", "13800000004", "男", "1990-13-45", ""],  # invalid date
            ["陈静", "13800000005", "", "", "成都"],
        ],
    )


def run(path, channel, kind="customer", **kwargs):
    job = import_job_create(path=path, kind=kind, channel=channel, **kwargs)
    return import_job_run(job=job)


def test_a_member_list_loads_new_people_and_reports_what_it_could_not(tmall, members):
    job = run(members, tmall)

    assert job.state == ImportJob.State.DONE
    assert (job.created, job.matched, job.invalid, job.skipped) == (3, 1, 1, 1)
    assert (job.preset, job.rows_total, job.rows_read) == ("member_list", 6, 6)
    li = Customer.objects.get(phone="+8613800000002")
    assert (li.name, li.gender, str(li.birthday), li.city) == ("李娜", "f", "1991-02-03", "上海")
    assert (li.name_pinyin, li.first_channel) == ("lina", tmall)
    assert not Identity.objects.filter(value__contains="*").exists()
    with open(job.error_report, encoding="utf-8-sig") as f:
        report = f.read()
    assert "1990-13-45" in report and "139****0003" in report and "13800000001" not in report
    assert AuditLog.objects.filter(action="import", target_id=str(job.pk)).exists()


def test_importing_the_same_file_twice_adds_nothing(tmall, members):
    run(members, tmall)
    before = (Customer.objects.count(), Identity.objects.count())

    again = run(members, tmall)

    assert (Customer.objects.count(), Identity.objects.count()) == before
    assert (again.created, again.matched) == (0, 4)


def test_existing_customers_keep_their_source_and_attributes_and_get_empty_ones_filled(
    tmall, members
):
    jd = ChannelFactory(code="jd")
    known = customer_resolve(
        identifiers=[("phone", "13800000001")], attributes={"name": "张大伟"}, channel=jd
    ).customer

    run(members, tmall)

    known.refresh_from_db()
    assert (known.name, known.city, known.first_channel) == ("张大伟", "杭州", jd)


def test_a_row_linking_two_existing_customers_merges_them(tmall, tmp_path):
    a = customer_resolve(identifiers=[("phone", "13800000001")]).customer
    b = customer_resolve(identifiers=[("tmall_buyer", "tb_li")]).customer
    path = write(
        tmp_path / "m.csv", ["姓名", "手机号", "淘宝会员名"], [["李", "13800000001", "tb_li"]]
    )

    job = run(path, tmall)

    assert job.merged == 1
    assert MergeRecord.objects.get(absorbed=b).survivor == a
    assert Identity.objects.get(value="tb_li").customer == a


def test_a_dry_run_counts_exactly_and_writes_nothing(tmall, members):
    job = import_job_create(path=members, kind="customer", channel=tmall)

    job = import_job_preview(job=job)

    assert job.state == ImportJob.State.PREVIEWED
    assert job.preview["counts"] == {
        "created": 3, "matched": 1, "merged": 0, "invalid": 1, "skipped": 1
    }  # fmt: skip
    assert [r["row"] for r in job.preview["rows"]][:2] == [2, 3]
    assert Customer.objects.count() == 0 and Identity.objects.count() == 0


def dies_in_chunk(number, exc=KeyboardInterrupt):
    """A progress callback that raises while chunk `number` is open (before its commit)."""
    calls = []

    def progress(count):
        calls.append(count)
        if len(calls) == number:
            raise exc

    return progress


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "SQLITE_CHUNK_ROWS", 2)


def later(job: ImportJob, by=STALLED_AFTER + timedelta(seconds=1)) -> None:
    """The clock moves on: the job's last heartbeat is `by` further in the past."""
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=F("heartbeat_at") - by)


def test_an_interrupted_job_keeps_whole_chunks_and_resumes_at_once_to_the_same_result(
    tmall, members, small_chunks
):
    job = import_job_create(path=members, kind="customer", channel=tmall)

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C, or a worker told to stop
        import_job_run(job=job, progress=dies_in_chunk(2))
    job.refresh_from_db()
    assert (job.state, job.rows_done, job.created) == (ImportJob.State.FAILED, 3, 2)
    assert "interrupted" in job.message
    assert Customer.objects.count() == 2  # the open chunk left nothing behind

    job = import_job_run(job=job)

    assert job.state == ImportJob.State.DONE
    assert (job.created, job.matched, job.invalid, job.skipped) == (3, 1, 1, 1)
    assert Customer.objects.count() == 3


def test_a_killed_job_stalls_and_can_then_be_resumed(tmall, members, small_chunks, monkeypatch):
    job = import_job_create(path=members, kind="customer", channel=tmall)
    with monkeypatch.context() as killed:  # the process dies without a word: no handler runs
        killed.setattr(services, "_fail", lambda *args: None)
        with pytest.raises(KeyboardInterrupt):
            import_job_run(job=job, progress=dies_in_chunk(2))
    job.refresh_from_db()
    assert job.state == ImportJob.State.RUNNING and not job.stalled

    # Until it has stalled, it may be a live worker's: neither resumed nor rolled back.
    with pytest.raises(DomainError, match="running in another process"):
        import_job_run(job=job)
    with pytest.raises(DomainError):
        import_job_rollback(job=job)

    later(job)
    job.refresh_from_db()
    assert job.stalled
    job = import_job_run(job=job)

    assert job.state == ImportJob.State.DONE and job.runner == ""
    assert (job.created, job.matched, job.invalid, job.skipped) == (3, 1, 1, 1)
    assert Customer.objects.count() == 3


def test_a_stalled_job_can_be_rolled_back(tmall, members, small_chunks, monkeypatch):
    job = import_job_create(path=members, kind="customer", channel=tmall)
    monkeypatch.setattr(services, "_fail", lambda *args: None)
    with pytest.raises(KeyboardInterrupt):
        import_job_run(job=job, progress=dies_in_chunk(2))
    later(job)

    job = import_job_rollback(job=ImportJob.objects.get(pk=job.pk))

    assert job.state == ImportJob.State.ROLLED_BACK and job.runner == ""
    assert not Customer.objects.exists()
    assert import_job_run(job=job).state == ImportJob.State.ROLLED_BACK  # and stays so


def test_a_chunk_is_not_kept_when_the_job_was_taken_from_its_process(tmall, members, small_chunks):
    job = import_job_create(path=members, kind="customer", channel=tmall)
    calls = []

    def taken_over_in_second_chunk(count):
        calls.append(count)
        if len(calls) == 2:  # another worker resumed the job as stalled, or it was rolled back
            ImportJob.objects.filter(pk=job.pk).update(runner="another worker")

    job = import_job_run(job=job, progress=taken_over_in_second_chunk)

    assert (job.rows_done, job.created) == (3, 2)  # the first chunk only
    assert Customer.objects.count() == 2
    assert job.state == ImportJob.State.RUNNING  # the job is the new runner's to finish


def test_a_job_queued_twice_runs_once(tmall, members):
    job = import_job_create(path=members, kind="customer", channel=tmall)
    assert import_job_start(job=job) is False  # not previewed yet
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.PREVIEWED)
    assert import_job_start(job=job) is True
    assert import_job_start(job=job) is False

    first = import_job_run(job=ImportJob.objects.get(pk=job.pk))
    second = import_job_run(job=ImportJob.objects.get(pk=job.pk))

    assert first.state == second.state == ImportJob.State.DONE
    assert Customer.objects.count() == 3 and first.created == second.created == 3


def test_a_job_cancelled_midway_keeps_its_committed_chunks_until_rolled_back(
    tmall, members, small_chunks
):
    job = import_job_create(path=members, kind="customer", channel=tmall)
    calls = []

    def cancelled_in_first_chunk(count):
        calls.append(count)
        if len(calls) == 1:
            import_job_cancel(job=ImportJob.objects.get(pk=job.pk))

    job = import_job_run(job=job, progress=cancelled_in_first_chunk)

    assert job.state == ImportJob.State.CANCELLED
    assert (job.rows_done, job.created, Customer.objects.count()) == (3, 2, 2)
    assert import_job_run(job=job).rows_done == 3  # a cancelled job does not go on
    with pytest.raises(DomainError):
        import_job_cancel(job=job)

    job = import_job_rollback(job=job)

    assert job.state == ImportJob.State.ROLLED_BACK and not Customer.objects.exists()


def test_a_cancel_that_comes_as_the_last_chunk_commits_is_not_overwritten_by_done(
    tmall, members, monkeypatch
):
    job = import_job_create(path=members, kind="customer", channel=tmall)
    write_report = services.import_job_report

    def cancelled_while_the_report_is_written(job, fmt="csv"):
        import_job_cancel(job=ImportJob.objects.get(pk=job.pk))
        return write_report(job=job, fmt=fmt)

    monkeypatch.setattr(services, "import_job_report", cancelled_while_the_report_is_written)

    job = import_job_run(job=job)

    assert job.state == ImportJob.State.CANCELLED
    assert not AuditLog.objects.filter(action="import", target_id=str(job.pk)).exists()


def test_an_unexpected_error_ends_the_job_failed_with_its_reason(tmall, members, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("the disk said no")

    monkeypatch.setattr(services, "resolve_rows", broken)
    job = import_job_create(path=members, kind="customer", channel=tmall)

    with pytest.raises(ValueError):
        import_job_run(job=job)

    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert "ValueError: the disk said no" in job.message
    assert job.can_start  # resumable once the cause is fixed


def test_a_file_that_breaks_down_midway_fails_saying_what_is_in_and_rolls_back(
    tmall, tmp_path, small_chunks, monkeypatch
):
    monkeypatch.setattr(readers, "SAMPLE_BYTES", 64)  # detection sees only the UTF-8 start
    good = "".join(f"张伟{i},1380000000{i}\r\n" for i in range(1, 6))
    path = tmp_path / "m.csv"
    path.write_bytes(f"姓名,手机号\r\n{good}".encode() + "李娜,13900000002\r\n".encode("gbk"))

    job = import_job_run(job=import_job_create(path=path, kind="customer", channel=tmall))

    assert job.state == ImportJob.State.FAILED
    assert job.message.startswith("row 7 (line 7 of the file) cannot be decoded"), job.message
    assert "The rows before it (4) are imported; fix the file and import it again" in job.message
    assert Customer.objects.count() == 4  # two chunks of two rows committed

    job = import_job_rollback(job=job)

    assert not Customer.objects.exists()


def test_a_workbook_whose_sheet_does_not_fit_names_its_sheets_and_the_right_one_loads(
    tmall, tmp_path
):
    path = write_xlsx(
        tmp_path / "导出.xlsx",
        {
            "统计": [["门店", "人数"], ["静安店", 2]],
            "会员": [["姓名", "手机号"], ["张伟", "13800000001"], ["李娜", "13800000002"]],
        },
    )

    with pytest.raises(ImportFileError) as refused:
        import_job_create(path=path, kind="customer", channel=tmall)

    assert "the workbook's sheets: 统计, 会员 — choose the sheet to import" in str(refused.value)
    job = import_job_run(
        job=import_job_create(path=path, kind="customer", channel=tmall, sheet="会员")
    )
    assert (job.state, job.created) == (ImportJob.State.DONE, 2)


def test_chunks_on_sqlite_are_larger_than_on_other_databases(tmall, members, monkeypatch):
    # SQLite rewrites every page a chunk changed at each commit: it takes larger chunks.
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "SQLITE_CHUNK_ROWS", 4)
    job = import_job_create(path=members, kind="customer", channel=tmall)
    sizes = []

    job = import_job_run(job=job, progress=sizes.append)

    assert sizes == ([4, 2] if connection.vendor == "sqlite" else [2, 2, 2])
    assert (job.created, job.matched, job.invalid, job.skipped) == (3, 1, 1, 1)


def test_an_unreadable_file_is_refused_before_a_job_exists(tmall, tmp_path):
    path = tmp_path / "junk.csv"
    path.write_bytes(b"\x00\x01\x02garbage\xff\xfe" * 100)
    with pytest.raises(ImportFileError):
        import_job_create(path=path, kind="customer", channel=tmall)
    assert not ImportJob.objects.exists()


TAOBAO = ["订单编号", "买家会员名", "买家实际支付金额", "订单状态", "收货人姓名", "联系手机",
          "订单创建时间", "订单付款时间", "宝贝标题", "宝贝总数量", "退款金额"]  # fmt: skip


# A completed order, a paid one with a masked phone (same buyer), an unpaid one.
TAOBAO_ROWS = [
    ["T1", "tb_zhang", "¥1,299.00", "交易成功", "张伟", "13800000001",
     "2026-03-01 10:00:00", "2026-03-01 10:01:00", "面霜", "1", ""],
    ["T2", "tb_zhang", "99", "买家已付款，等待卖家发货", "张伟", "138****0001",
     "2026/3/5 09:00", "2026/3/5 09:02", "面膜", "2", ""],
    ["T3", "tb_new", "59.9", "等待买家付款", "刘洋", "", "2026-03-06", "", "小样", "1", ""],
]  # fmt: skip


def test_taobao_orders_load_keyed_by_order_number_and_refunds_update_them(tmall, tmp_path):
    rows = [list(row) for row in TAOBAO_ROWS]
    job = run(write(tmp_path / "o.csv", TAOBAO, rows), tmall, kind="order")

    assert job.state == ImportJob.State.DONE and job.preset == "taobao_orders"
    zhang = Identity.objects.get(kind="tmall_buyer", value="tb_zhang").customer
    assert zhang.phone == "+8613800000001"
    t1 = Order.objects.get(channel=tmall, external_id="T1")
    assert (t1.customer, str(t1.amount), t1.status) == (zhang, "1299.00", "completed")
    assert Order.objects.get(external_id="T2").phone_display == "138****0001"
    assert OrderItem.objects.get(order__external_id="T2").quantity == 2

    t2_written = Order.objects.get(external_id="T2").updated_at
    rows[0][3], rows[0][10] = "交易关闭", "1,299.00"  # refunded since the last export
    run(write(tmp_path / "o2.csv", TAOBAO, rows), tmall, kind="order")

    t1.refresh_from_db()
    assert (t1.status, str(t1.refund_amount)) == ("refunded", "1299.00")
    assert Order.objects.count() == 3 and OrderItem.objects.count() == 3
    assert Order.objects.get(external_id="T2").updated_at == t2_written  # unchanged: not rewritten


def test_one_order_file_with_dates_and_amounts_written_every_which_way_loads_them_all(
    tmall, tmp_path
):
    written = [
        ("2026-03-01 10:00:00", "¥1,299.00"),
        ("2026/3/2 9:05", "￥12,345.5"),
        ("2026年3月3日 8时30分", "88元"),
        ("20260304", "RMB 7"),
        ("2026.03.05", "1299"),
        ("2026-3-6T20:00", "bad amount"),
        ("2026-02-30", "10"),
    ]
    rows = [
        [f"M{i}", f"tb_{i}", amount, "交易成功", "", "", placed, "", "", "", ""]
        for i, (placed, amount) in enumerate(written)
    ]

    job = run(write(tmp_path / "mixed.csv", TAOBAO, rows), tmall, kind="order")

    loaded = {
        o.external_id: (timezone.localtime(o.placed_at).strftime("%m-%d %H:%M"), str(o.amount))
        for o in Order.objects.all()
    }
    assert loaded == {
        "M0": ("03-01 10:00", "1299.00"),
        "M1": ("03-02 09:05", "12345.50"),
        "M2": ("03-03 08:30", "88.00"),
        "M3": ("03-04 00:00", "7.00"),
        "M4": ("03-05 00:00", "1299.00"),
    }
    assert job.invalid == 2
    reasons = {e.row: e.errors[0]["reason"] for e in job.row_errors.all()}
    assert "amount is not a number" in reasons[7]
    assert "not a valid date" in reasons[8]  # 30 February


def test_an_erp_workbook_with_a_title_bar_and_orders_merged_over_their_lines_loads_whole(
    tmall, tmp_path
):
    # What ERPs export: a title bar, then each order's cells merged over its item lines.
    t1, t3 = TAOBAO_ROWS[0], TAOBAO_ROWS[2]
    sheet = [
        ["天猫订单明细 2026-03"],
        TAOBAO,
        t1,
        [None] * 8 + ["眼霜", "2", None],
        [None] * 8 + ["精华", "1", None],
        t3,
    ]
    order_columns = ["A", "B", "C", "D", "E", "F", "G", "H"]
    merged = ["A1:K1", *(f"{column}3:{column}5" for column in order_columns)]
    path = write_xlsx(tmp_path / "订单.xlsx", {"订单": sheet}, merged={"订单": merged})

    job = run(path, tmall, kind="order")

    assert (job.state, job.invalid, job.preset) == (ImportJob.State.DONE, 0, "taobao_orders")
    t1_order = Order.objects.get(external_id="T1")
    assert str(t1_order.amount) == "1299.00"  # the order's amount, once, not once per line
    assert sorted(t1_order.items.values_list("title", "quantity")) == [
        ("眼霜", 2), ("精华", 1), ("面霜", 1)
    ]  # fmt: skip
    assert t1_order.customer.phone == "+8613800000001"
    assert Order.objects.get(external_id="T3").items.count() == 1


def test_rolling_back_removes_what_the_job_added_and_keeps_what_others_added(tmall, members, org):
    from siyu.customers.tests.factories import RelationshipFactory

    known = customer_resolve(identifiers=[("phone", "13800000001")]).customer
    job = run(members, tmall)
    li = Customer.objects.get(phone="+8613800000002")
    RelationshipFactory(customer=li, staff=org.staff_a)  # a friend added since the import

    services.import_job_rollback(job=job)

    job.refresh_from_db()
    assert job.state == ImportJob.State.ROLLED_BACK
    assert set(Customer.objects.values_list("pk", flat=True)) == {known.pk, li.pk}
    assert not Identity.objects.filter(customer=li).exists()  # the job's identity is gone
    assert Identity.objects.filter(customer=known, value="+8613800000001").exists()
    assert AuditLog.objects.filter(action="delete", target_id=str(job.pk)).exists()
    with pytest.raises(DomainError, match="rolled back already"):
        services.import_job_rollback(job=job)


def test_rolling_back_an_order_import_removes_its_orders_and_lines(tmall, tmp_path):
    rows = [["T9", "tb_9", "10", "交易成功", "刘", "", "2026-03-01", "2026-03-01", "茶", "1", ""]]
    job = run(write(tmp_path / "o.csv", TAOBAO, rows), tmall, kind="order")

    services.import_job_rollback(job=job)

    assert not Order.objects.exists() and not OrderItem.objects.exists()
    assert not Customer.objects.exists() and not Identity.objects.exists()


def test_a_job_that_never_started_has_nothing_to_roll_back(tmall, members):
    # given a job previewed but not started
    job = import_job_create(path=members, kind="customer", channel=tmall)
    job = services.import_job_preview(job=job)
    # then the console offers to start it, not to roll it back, and the service agrees
    assert job.can_start and not job.can_roll_back
    with pytest.raises(DomainError, match="has not started"):
        services.import_job_rollback(job=job)
    assert ImportJob.objects.get(pk=job.pk).state == ImportJob.State.PREVIEWED
    # once it ran, it is the other way round
    job = import_job_run(job=job)
    assert job.can_roll_back and not job.can_start
