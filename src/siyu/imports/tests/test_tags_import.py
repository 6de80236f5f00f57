"""Tags imports: a file naming existing customers and their tags, loaded through the tag
services; never creating people, idempotent, previewable, resumable and reversible."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Customer, Identity
from siyu.customers.services import customer_resolve
from siyu.customers.tests.factories import ChannelFactory
from siyu.imports import services
from siyu.imports.models import ImportJob, ImportRowError
from siyu.imports.services import import_job_create, import_job_preview, import_job_run
from siyu.imports.tag_rows import parse_tag, split_tags
from siyu.imports.tests.files import csv_text, write_xlsx
from siyu.tags.models import CustomerTag, Source, TagChange, TagGroup
from siyu.tags.services import tags_assign
from siyu.tags.tests.factories import TagFactory, TagGroupFactory

HEADER = ["手机号", "邮箱", "会员号", "标签"]


def write(path, rows, header=HEADER):
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def people(db):
    """Three customers, each known by a different identifier."""
    return {
        "zhang": customer_resolve(identifiers=[("phone", "13800000001")]).customer,
        "li": customer_resolve(identifiers=[("email", "li@example.com")]).customer,
        "wang": customer_resolve(identifiers=[("store_member_no", "M0003")]).customer,
    }


@pytest.fixture
def tagged(tmp_path, people):
    """Group:tag and bare tags, ASCII and full-width separators and colons."""
    return write(
        tmp_path / "tags.csv",
        [
            ["13800000001", "", "", "兴趣:美妆, VIP"],
            ["", "li@example.com", "", "兴趣：母婴；VIP"],
            ["", "", "M0003", " 高净值 | 兴趣 : 美妆 、复购 "],
        ],
    )


def tags_of(customer) -> set[str]:
    return {
        f"{group}:{name}"
        for group, name in CustomerTag.objects.filter(customer=customer).values_list(
            "tag__group__name", "tag__name"
        )
    }


def run(path, **kwargs):
    job = import_job_create(path=path, kind="tag", channel=None, **kwargs)
    return import_job_run(job=job)


def test_tags_land_on_the_customers_each_row_names_with_groups_bare_tags_and_a_fixed_tag(
    people, tagged, org
):
    job = import_job_create(
        path=tagged, kind="tag", channel=None, tag="活动：双11", user=org.admin.user
    )
    assert (job.preset, job.tag, job.channel) == ("tag_list", "活动:双11", None)

    job = import_job_run(job=job)

    assert job.state == ImportJob.State.DONE
    assert (job.rows_read, job.matched, job.skipped, job.invalid) == (3, 3, 0, 0)
    assert (job.created, job.merged, job.error_report) == (0, 0, "")
    assert tags_of(people["zhang"]) == {"兴趣:美妆", "导入标签:VIP", "活动:双11"}
    assert tags_of(people["li"]) == {"兴趣:母婴", "导入标签:VIP", "活动:双11"}
    assert tags_of(people["wang"]) == {"导入标签:高净值", "兴趣:美妆", "导入标签:复购", "活动:双11"}
    assert set(CustomerTag.objects.values_list("source", flat=True)) == {Source.IMPORT}
    assert set(CustomerTag.objects.values_list("added_by", flat=True)) == {org.admin.user.pk}
    assert TagChange.objects.filter(action="added", source="import").count() == 10
    created = TagGroup.objects.filter(name__in=["兴趣", "导入标签", "活动"])
    assert {(g.dimension, g.exclusive) for g in created} == {("basic", False)}
    assert Customer.objects.count() == 3  # nobody new
    assert AuditLog.objects.filter(action="import", target_id=str(job.pk)).exists()


def test_the_usual_separators_split_a_cell_and_group_marks_may_be_full_width():
    text = "a, b，c;d；e|f｜g、h\n i ,, 组：标签 ,组 : 二"

    assert split_tags(text) == [
        (None, "a"), (None, "b"), (None, "c"), (None, "d"), (None, "e"), (None, "f"),
        (None, "g"), (None, "h"), (None, "i"), ("组", "标签"), ("组", "二"),
    ]  # fmt: skip
    assert split_tags("VIP、VIP") == [(None, "VIP")]
    for bad in (":VIP", "组:", "x" * 51, "组:" + "x" * 51):
        with pytest.raises(DomainError):
            parse_tag(bad)


def test_rows_naming_nobody_masked_numbers_and_bad_tags_go_to_the_report_and_create_nobody(
    people, tmp_path
):
    path = write(
        tmp_path / "t.csv",
        [
            ["13800000001", "", "", "VIP"],
            ["13899999999", "", "", "VIP"],  # nobody has this phone
            ["138****0001", "", "", "VIP"],  # masked: identifies nobody
            ["", "", "", "VIP"],  # no identifier at all
            ["", "", "M0003", ""],  # no tag and no tag for every row
            ["", "nobody@example.com", "M9999", "VIP"],
        ],
    )
    customers, identities = Customer.objects.count(), Identity.objects.count()

    job = run(path)

    assert (job.rows_read, job.matched, job.skipped, job.invalid) == (6, 1, 0, 5)
    errors = {e.row: e.errors[0] for e in ImportRowError.objects.filter(job=job).order_by("row")}
    assert errors[3] == {
        "column": "手机号", "reason": "no customer with this identifier", "value": "13899999999"
    }  # fmt: skip
    assert errors[4]["column"] == "手机号" and errors[4]["value"] == "138****0001"
    assert "masked" in errors[4]["reason"]
    assert errors[5]["reason"].startswith("no phone, e-mail")
    assert (errors[6]["column"], errors[6]["reason"]) == ("标签", "no tag in this row")
    assert errors[7] == {
        "column": "邮箱、会员号",
        "reason": "no customer with this identifier",
        "value": "nobody@example.com / M9999",
    }
    assert (Customer.objects.count(), Identity.objects.count()) == (customers, identities)
    assert tags_of(people["zhang"]) == {"导入标签:VIP"}
    with open(job.error_report, encoding="utf-8-sig") as f:
        report = f.read()
    assert "13899999999" in report and "138****0001" in report and "13800000001" not in report


def test_a_row_naming_two_tags_of_an_exclusive_group_is_an_error_and_others_replace(
    people, tmp_path
):
    level = TagGroupFactory(name="会员等级", exclusive=True)
    gold, silver = TagFactory(group=level, name="金卡"), TagFactory(group=level, name="银卡")
    tags_assign(customer_ids=[people["li"].pk], tag=gold, source=Source.MANUAL)
    path = write(
        tmp_path / "t.csv",
        [
            ["13800000001", "", "", "会员等级:金卡, 会员等级:银卡"],
            ["", "li@example.com", "", "会员等级:银卡"],
        ],
    )

    job = run(path)

    assert (job.matched, job.invalid) == (1, 1)
    error = ImportRowError.objects.get(job=job)
    assert (error.row, error.errors[0]["column"]) == (2, "标签")
    assert "allows one tag per customer" in error.errors[0]["reason"]
    assert tags_of(people["zhang"]) == set()
    assert tags_of(people["li"]) == {"会员等级:银卡"}  # the group's other tag came off
    assert silver.assignments.count() == 1


def test_a_later_row_for_the_same_customer_wins_in_an_exclusive_group(people, tmp_path):
    TagGroupFactory(name="会员等级", exclusive=True)
    path = write(
        tmp_path / "t.csv",
        [["13800000001", "", "", "会员等级:金卡"], ["13800000001", "", "", "会员等级:银卡"]],
    )

    job = run(path)

    assert tags_of(people["zhang"]) == {"会员等级:银卡"}
    assert (job.matched, job.skipped) == (1, 1)


def test_importing_the_same_tags_file_again_adds_nothing(people, tagged):
    run(tagged, tag="活动:双11")
    before = (CustomerTag.objects.count(), TagChange.objects.count(), TagGroup.objects.count())

    again = run(tagged, tag="活动:双11")

    assert (again.matched, again.skipped, again.invalid) == (0, 3, 0)
    assert again.error_report == ""  # skipped rows are not failures
    after = (CustomerTag.objects.count(), TagChange.objects.count(), TagGroup.objects.count())
    assert after == before


def test_a_dry_run_counts_and_writes_nothing(people, tagged):
    job = import_job_create(path=tagged, kind="tag", channel=None, tag="活动:双11")

    job = import_job_preview(job=job)

    assert job.state == ImportJob.State.PREVIEWED
    assert job.preview["counts"] == {
        "created": 0, "matched": 3, "merged": 0, "invalid": 0, "skipped": 0
    }  # fmt: skip
    assert job.preview["rows"][0]["fields"] == {"tags": "兴趣:美妆、VIP、活动:双11"}
    assert not CustomerTag.objects.exists() and not TagChange.objects.exists()
    assert not TagGroup.objects.exists()


def test_rolling_back_takes_off_only_the_assignments_this_job_made(people, tmp_path, org):
    vip = TagFactory(group=TagGroupFactory(name="导入标签"), name="VIP")
    tags_assign(customer_ids=[people["zhang"].pk], tag=vip, source=Source.MANUAL)
    path = write(
        tmp_path / "t.csv",
        [["13800000001", "", "", "VIP"], ["", "li@example.com", "", "VIP, 新客"]],
    )
    job = run(path)
    other = TagFactory(name="手动")
    tags_assign(customer_ids=[people["li"].pk], tag=other, source=Source.MANUAL)
    history = TagChange.objects.count()

    job = services.import_job_rollback(job=job, actor=org.admin.user)

    assert job.state == ImportJob.State.ROLLED_BACK
    assert job.message == "rolled back: 2 tag assignments removed"
    assert tags_of(people["zhang"]) == {"导入标签:VIP"}  # had it before the import
    assert tags_of(people["li"]) == {f"{other.group.name}:手动"}  # added by hand since
    removed = TagChange.objects.filter(action="removed")
    assert removed.count() == 2 and TagChange.objects.count() == history + 2  # history stays
    assert set(removed.values_list("by", flat=True)) == {org.admin.user.pk}
    assert AuditLog.objects.filter(action="delete", target_id=str(job.pk)).exists()
    with pytest.raises(DomainError, match="rolled back already"):
        services.import_job_rollback(job=job)


def test_a_tags_job_interrupted_midway_resumes_to_the_same_result(people, tagged, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "SQLITE_CHUNK_ROWS", 2)
    job = import_job_create(path=tagged, kind="tag", channel=None)
    calls = []

    def dies_in_second_chunk(count):
        calls.append(count)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_job_run(job=job, progress=dies_in_second_chunk)
    job.refresh_from_db()
    assert (job.state, job.rows_done, job.matched) == (ImportJob.State.FAILED, 3, 2)
    assert tags_of(people["wang"]) == set()

    job = import_job_run(job=job)

    assert (job.state, job.matched, job.skipped) == (ImportJob.State.DONE, 3, 0)
    assert tags_of(people["wang"]) == {"导入标签:高净值", "兴趣:美妆", "导入标签:复购"}
    services.import_job_rollback(job=job)  # both runs' assignments are recorded
    assert not CustomerTag.objects.exists()


def test_loading_costs_the_same_queries_for_few_or_many_rows(db, tmp_path):
    TagFactory(group=TagGroupFactory(name="兴趣"), name="美妆")
    TagFactory(group=TagGroupFactory(name="导入标签"), name="VIP")

    def queries(count: int) -> int:
        rows = []
        for i in range(count):
            phone = f"1380000{i:04d}"
            customer_resolve(identifiers=[("phone", phone)])
            rows.append([phone, "", "", "兴趣:美妆, VIP" if i % 2 else "VIP"])
        job = import_job_create(
            path=write(tmp_path / f"{count}.csv", rows), kind="tag", channel=None
        )
        with CaptureQueriesContext(connection) as captured:
            job = import_job_run(job=job)
        assert job.matched == count
        CustomerTag.objects.all().delete()
        return len(captured)

    assert queries(4) == queries(40)


def test_an_xlsx_tags_file_with_numeric_cells_loads(people, tmp_path):
    path = write_xlsx(
        tmp_path / "t.xlsx",
        {"标签": [["会员号", "手机", "tags"], [None, 13800000001, "VIP"], [7, None, "VIP"]]},
    )

    job = run(path)

    assert (job.preset, job.matched, job.invalid) == ("tag_list", 1, 1)
    assert ImportRowError.objects.get(job=job).errors[0]["value"] == "7"
    assert tags_of(people["zhang"]) == {"导入标签:VIP"}


def test_a_tags_file_needs_a_tags_column_or_a_tag_for_every_row(people, tmp_path):
    from siyu.imports.readers import ImportFileError

    phones = write(tmp_path / "p.csv", [["13800000001"]], header=["手机号"])
    with pytest.raises(ImportFileError, match="give one tag for every row"):
        import_job_create(path=phones, kind="tag", channel=None)
    with pytest.raises(DomainError, match="group:tag"):
        import_job_create(path=phones, kind="tag", channel=None, tag="组:")
    with pytest.raises(DomainError, match="channel"):
        import_job_create(path=phones, kind="customer", channel=None)

    job = run(phones, tag="活动:双11")

    assert job.preset == "tag_phone_list" and job.matched == 1
    assert tags_of(people["zhang"]) == {"活动:双11"}


def test_siyu_import_tags_runs_with_a_fixed_tag_and_a_dry_run(people, tagged):
    out = io.StringIO()
    call_command("import_file", "tags", str(tagged), "--tag", "活动:双11", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "Would import: matched 3, invalid 0, skipped 0"
    assert not CustomerTag.objects.exists()

    out = io.StringIO()
    call_command("import_file", "tags", str(tagged), "--tag", "活动:双11", stdout=out)

    job = ImportJob.objects.latest("pk")
    assert out.getvalue().startswith(f"Job {job.pk} done: rows_read 3, matched 3,")
    assert "活动:双11" in tags_of(people["li"])


def test_console_upload_of_a_tags_file_previews_imports_and_reports(
    people, org, login, django_capture_on_commit_callbacks
):
    client = login(org.admin)
    rows = [HEADER, ["13800000001", "", "", "兴趣:美妆"], ["13899999999", "", "", "VIP"]]
    upload = SimpleUploadedFile("tags.csv", csv_text(rows).encode(), content_type="text/csv")
    data = {"kind": "tag", "channel": "", "tag": "活动：双11", "file": upload, "mapping": ""}
    new = client.get(reverse("imports:new")).content.decode()
    assert 'value="tag"' in new and 'name="tag"' in new

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imports:new"), data)

    job = ImportJob.objects.get()
    assert response.status_code == 302, response.context["form"].errors
    assert (job.kind, job.state, job.tag, job.preset) == (
        "tag",
        "previewed",
        "活动:双11",
        "tag_list",
    )
    page = client.get(response["Location"])
    assert [v for _, v in page.context["preview_counts"]] == [1, 0, 1]
    assert "活动:双11" in page.content.decode()
    assert not CustomerTag.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imports:start", args=[job.pk]))
    job.refresh_from_db()
    assert (job.state, job.matched, job.invalid) == ("done", 1, 1)
    assert tags_of(people["zhang"]) == {"兴趣:美妆", "活动:双11"}
    content = client.get(response["Location"]).content.decode()
    assert reverse("imports:errors_csv", args=[job.pk]) in content
    report = client.get(reverse("imports:errors_csv", args=[job.pk]))
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "13899999999" in text and "no customer with this identifier" in text
    history = client.get(reverse("imports:list")).content.decode()
    assert "tags.csv" in history and str(ImportJob.Kind.TAGS.label) in history


def test_the_upload_form_refuses_a_fixed_tag_for_other_files_and_a_missing_channel(org, login):
    client = login(org.admin)
    upload = SimpleUploadedFile("m.csv", csv_text([["手机号"], ["13800000001"]]).encode())
    response = client.post(
        reverse("imports:new"),
        {"kind": "customer", "channel": "", "tag": "组:", "file": upload, "mapping": ""},
    )
    errors = response.context["form"].errors
    assert response.status_code == 200 and {"channel", "tag"} <= errors.keys()
    assert not ImportJob.objects.exists()


# --------------------------------------------------------------------------------------------
# Tags and membership levels in a customer file


YOUZAN_MEMBERS = ["客户姓名", "手机号", "性别", "生日", "会员卡号", "会员等级", "客户标签"]


def test_a_member_list_puts_its_tags_and_levels_on_the_customers_it_loads(people, tmp_path, org):
    youzan = ChannelFactory(code="youzan")
    path = write(
        tmp_path / "members.csv",
        [
            ["张三", "13800000001", "男", "1990-01-01", "Y1", "金卡", "兴趣:美妆, VIP"],
            ["李四", "13800000002", "女", "", "Y2", "银卡", ""],
            ["王五", "13800000003", "", "", "Y3", "", "VIP"],
        ],
        header=YOUZAN_MEMBERS,
    )
    job = import_job_create(path=path, kind="customer", channel=youzan, user=org.admin.user)
    assert job.preset == "youzan_members"

    job = import_job_run(job=job)

    assert job.state == ImportJob.State.DONE, job.message
    assert (job.created, job.matched, job.invalid, job.error_report) == (2, 1, 0, "")
    li = Identity.objects.get(value="+8613800000002").customer
    wang = Identity.objects.get(value="+8613800000003").customer
    assert tags_of(people["zhang"]) == {"会员等级:金卡", "兴趣:美妆", "导入标签:VIP"}
    assert tags_of(li) == {"会员等级:银卡"}
    assert tags_of(wang) == {"导入标签:VIP"}
    assert TagGroup.objects.get(name="会员等级").exclusive  # one level per customer
    assert set(CustomerTag.objects.values_list("source", flat=True)) == {Source.IMPORT}

    again = import_job_run(job=import_job_create(path=path, kind="customer", channel=youzan))

    assert again.state == ImportJob.State.DONE
    assert CustomerTag.objects.count() == 5  # nothing new
    assert TagChange.objects.filter(action="added").count() == 5


def test_a_new_level_replaces_the_old_and_rolling_back_takes_off_the_files_tags(
    people, tmp_path, org
):
    youzan = ChannelFactory(code="youzan")
    header = ["手机号", "会员等级", "标签"]
    first = write(tmp_path / "a.csv", [["13800000001", "银卡", "老客"]], header=header)
    import_job_run(job=import_job_create(path=first, kind="customer", channel=youzan))
    later = write(
        tmp_path / "b.csv",
        [["13800000001", "金卡", "复购"], ["13900000009", "金卡", "新客"]],
        header=header,
    )

    job = import_job_run(job=import_job_create(path=later, kind="customer", channel=youzan))

    assert tags_of(people["zhang"]) == {"会员等级:金卡", "导入标签:老客", "导入标签:复购"}
    newcomer = Identity.objects.get(value="+8613900000009").customer

    job = services.import_job_rollback(job=job, actor=org.admin.user)

    assert "4 tag assignments removed" in job.message
    assert tags_of(people["zhang"]) == {"导入标签:老客"}  # the first file's stay
    assert not Customer.objects.filter(pk=newcomer.pk).exists()
    assert not CustomerTag.objects.filter(customer_id=newcomer.pk).exists()


def test_a_row_whose_tags_cannot_go_on_loads_its_customer_and_reports_why(people, tmp_path):
    TagGroupFactory(name="渠道", exclusive=True)
    path = write(
        tmp_path / "m.csv",
        [["13800000001", "渠道:天猫, 渠道:京东"], ["13900000009", "VIP"]],
        header=["手机号", "标签"],
    )

    job = import_job_run(
        job=import_job_create(path=path, kind="customer", channel=ChannelFactory(code="x"))
    )

    assert job.state == ImportJob.State.DONE
    assert (job.created, job.matched, job.invalid) == (1, 1, 0)
    assert tags_of(people["zhang"]) == set()
    (error,) = ImportRowError.objects.filter(job=job)
    assert error.row == 2
    assert error.errors[0]["column"] == "标签"
    assert "allows one tag per customer" in error.errors[0]["reason"]
    assert job.error_report  # the report lists it
