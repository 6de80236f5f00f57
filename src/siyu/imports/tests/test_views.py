"""The imports console: upload, hand mapping, preview, start, progress, result, error report."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Customer
from siyu.customers.tests.factories import ChannelFactory
from siyu.imports import forms
from siyu.imports.models import STALLED_AFTER, ImportJob, SavedMapping
from siyu.imports.services import import_job_create, import_job_run
from siyu.imports.tests.files import csv_text, write_xlsx

NEW = reverse("imports:new")
LIST = reverse("imports:list")
MEMBERS = [
    ["姓名", "手机号", "性别", "生日", "城市"],
    ["张伟", "13800000001", "男", "1990-01-02", "杭州"],
    ["李娜", "13800000002", "女", "1991/2/3", "上海"],
    ["李娜", "+86 138 0000 0002", "女", "", ""],  # the same person again
    ["王芳", "139****0003", "女", "", ""],  # masked: skipped
    ["赵磊", "13800000004", "男", "1990-13-45", ""],  # invalid date
    ["陈静", "13800000005", "", "", "成都"],
]


@pytest.fixture
def tmall(db):
    return ChannelFactory(code="tmall", name="天猫")


def upload(rows, name="members.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, csv_text(rows).encode("utf-8"), content_type="text/csv")


def form_data(channel, file=None, **extra) -> dict:
    data = {"kind": "customer", "channel": channel.pk, "encoding": "", "sheet": "", "mapping": ""}
    if file is not None:
        data["file"] = file
    return {**data, **extra}


def post_upload(client, capture, data):
    """Post the form; the preview task queued on commit runs at once (huey is immediate)."""
    with capture(execute=True):
        return client.post(NEW, data)


def make_job(channel, user=None, **fields) -> ImportJob:
    values = {"kind": "customer", "file": "/nonexistent.csv", "original_name": "a.csv"}
    return ImportJob.objects.create(
        channel=channel, file_sha256="0" * 64, created_by=user, **{**values, **fields}
    )


def job_urls(job) -> list[tuple[str, str]]:
    return [
        ("get", LIST),
        ("get", NEW),
        ("post", NEW),
        ("get", reverse("imports:detail", args=[job.pk])),
        ("post", reverse("imports:start", args=[job.pk])),
        ("post", reverse("imports:cancel", args=[job.pk])),
        ("get", reverse("imports:errors_csv", args=[job.pk])),
        ("get", reverse("imports:errors_xlsx", args=[job.pk])),
    ]


def test_staff_get_404_on_every_imports_url_and_no_nav_entry(org, tmall, login):
    job = make_job(tmall, state=ImportJob.State.PREVIEWED, invalid=1)
    client = login(org.staff_a)
    for method, url in job_urls(job):
        assert getattr(client, method)(url).status_code == 404, url
    assert LIST not in client.get(reverse("console:home")).content.decode()
    job.refresh_from_db()
    assert job.state == ImportJob.State.PREVIEWED


def test_anonymous_is_sent_to_login(client, tmall):
    job = make_job(tmall)
    for method, url in job_urls(job):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("console:login"))


@pytest.mark.parametrize("who", ["admin", "manager_a"])
def test_admins_and_managers_see_the_area(org, login, who):
    client = login(getattr(org, who))
    assert client.get(LIST).status_code == 200
    assert client.get(NEW).status_code == 200
    assert LIST in client.get(reverse("console:home")).content.decode()


def test_admin_uploads_previews_imports_and_downloads_the_rows_that_did_not_load(
    org, tmall, login, django_capture_on_commit_callbacks
):
    client = login(org.admin)
    # when the admin uploads a member list
    response = post_upload(
        client, django_capture_on_commit_callbacks, form_data(tmall, upload(MEMBERS))
    )
    # then a job exists, was checked by a dry run, and the page shows what it would do
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:detail", args=[job.pk])
    assert (job.state, job.preset, job.created_by) == ("previewed", "member_list", org.admin.user)
    page = client.get(response["Location"])
    assert [v for _, v in page.context["preview_counts"]] == [3, 1, 0, 1, 1]
    content = page.content.decode()
    assert "members.csv" in content and reverse("imports:start", args=[job.pk]) in content
    assert 'hx-trigger="every 1s"' not in content
    assert Customer.objects.count() == 0  # the dry run wrote nothing

    # when they start it
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imports:start", args=[job.pk]))
    # then it ran to the end, and the result offers the error report
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    assert (job.created, job.matched, job.merged, job.invalid, job.skipped) == (3, 1, 0, 1, 1)
    assert Customer.objects.count() == 3
    started = AuditLog.objects.get(action=AuditLog.Action.UPDATE, target_id=str(job.pk))
    assert (started.actor, started.summary) == (org.admin.user, "started the import of members.csv")
    content = client.get(response["Location"]).content.decode()
    assert reverse("imports:errors_csv", args=[job.pk]) in content
    assert reverse("imports:errors_xlsx", args=[job.pk]) in content

    # when they download it
    report = client.get(reverse("imports:errors_csv", args=[job.pk]))
    # then it names the bad row, and the download is in the audit log
    assert report.status_code == 200
    assert "attachment" in report["Content-Disposition"]
    assert "members-errors.csv" in report["Content-Disposition"]
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "1990-13-45" in text and "139****0003" in text and "13800000001" not in text
    assert AuditLog.objects.filter(
        action=AuditLog.Action.EXPORT, target_type="imports.importjob", target_id=str(job.pk)
    ).exists()
    xlsx = client.get(reverse("imports:errors_xlsx", args=[job.pk]))
    assert xlsx.status_code == 200 and b"".join(xlsx.streaming_content)[:2] == b"PK"


def test_a_file_with_only_its_header_previews_as_having_no_data_rows(
    org, tmall, login, django_capture_on_commit_callbacks
):
    client = login(org.admin)
    response = post_upload(
        client, django_capture_on_commit_callbacks, form_data(tmall, upload(MEMBERS[:1]))
    )

    page = client.get(response["Location"])
    assert ImportJob.objects.get().state == ImportJob.State.PREVIEWED
    assert [v for _, v in page.context["preview_counts"]] == [0, 0, 0, 0, 0]
    assert "文件中没有数据行" in page.content.decode()  # "The file has no data rows."


def test_a_file_that_breaks_down_after_its_first_rows_fails_its_preview_and_cannot_start(
    org, tmall, login, django_capture_on_commit_callbacks
):
    # The first 2 MB read as UTF-8 (what detection samples); a row after them is GBK.
    good = "".join(f"张伟{i},138{i:08d}\r\n" for i in range(70_000)).encode("utf-8")
    data = "姓名,手机号\r\n".encode() + good + "李娜,13900000002\r\n".encode("gbk")
    client = login(org.admin)
    upload_file = SimpleUploadedFile("members.csv", data, content_type="text/csv")

    response = post_upload(
        client, django_capture_on_commit_callbacks, form_data(tmall, upload_file)
    )

    job = ImportJob.objects.get()
    assert job.state == ImportJob.State.FAILED
    assert "70002" in job.message or "70,002" in job.message, job.message
    page = client.get(response["Location"])
    assert page.context["polling"] is False
    assert "文件无法导入" in page.content.decode()  # "The file cannot be imported:"
    assert not job.can_start
    assert client.post(reverse("imports:start", args=[job.pk])).status_code in (302, 400)
    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert not Customer.objects.exists()
    with pytest.raises(DomainError, match="the preview found the file cannot be imported"):
        import_job_run(job=job)
    assert not Customer.objects.exists()


def test_the_encoding_chosen_in_the_form_is_the_one_the_file_is_read_with(
    org, tmall, login, django_capture_on_commit_callbacks
):
    # Big5 bytes are valid GB18030 too: detection reads them as GB18030 (mainland first).
    data = csv_text([["name", "mobile"], ["陳靜", "13800000005"]]).encode("big5")
    client = login(org.admin)

    for encoding, name in (("", "朝繰"), ("big5", "陳靜")):
        upload_file = SimpleUploadedFile(f"{encoding or 'auto'}.csv", data)
        post_upload(
            client,
            django_capture_on_commit_callbacks,
            form_data(tmall, upload_file, encoding=encoding),
        )
        job = ImportJob.objects.latest("pk")
        assert (job.encoding, job.preview["rows"][0]["fields"]["name"]) == (
            encoding or "gb18030",
            name,
        )


def test_a_garbage_upload_shows_a_clear_message_and_creates_no_job(
    org, tmall, login, django_capture_on_commit_callbacks
):
    junk = SimpleUploadedFile("junk.csv", b"\x00\x01\x02garbage\xff\xfe" * 100)
    response = post_upload(
        login(org.admin), django_capture_on_commit_callbacks, form_data(tmall, junk)
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert "alert-error" in response.content.decode()
    assert response.context["form"].mapping_fields == []
    assert not ImportJob.objects.exists()


def test_an_old_xls_file_is_refused_with_how_to_convert_it(org, tmall, login):
    xls = SimpleUploadedFile("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    response = login(org.admin).post(NEW, form_data(tmall, xls))
    assert response.status_code == 200
    assert ".xlsx" in " ".join(response.context["form"].non_field_errors())
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "customer", "mapping": ""}, "file"),  # no file
        ({"kind": "customer", "mapping": "preset:taobao_orders"}, "mapping"),  # wrong kind
        ({"kind": "nonsense", "mapping": ""}, "kind"),
        ({"kind": "customer", "mapping": "preset:nonsense"}, "mapping"),
        ({"kind": "customer", "mapping": "saved:99999"}, "mapping"),
    ],
)
def test_invalid_form_input_is_reported_on_its_field(org, tmall, login, data, field):
    file = upload(MEMBERS) if field != "file" else None
    response = login(org.admin).post(NEW, form_data(tmall, file, **data))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not ImportJob.objects.exists()


def test_a_file_over_the_size_limit_is_refused(org, tmall, login, monkeypatch):
    monkeypatch.setattr(forms, "MAX_UPLOAD_BYTES", 10)
    response = login(org.admin).post(NEW, form_data(tmall, upload(MEMBERS)))
    assert response.status_code == 200
    assert "file" in response.context["form"].errors
    assert not ImportJob.objects.exists()


def test_an_uploaded_file_is_kept_when_another_field_is_wrong(
    org, tmall, login, django_capture_on_commit_callbacks
):
    client = login(org.admin)
    # given an upload without a channel
    response = client.post(NEW, {**form_data(tmall, upload(MEMBERS)), "channel": ""})
    form = response.context["form"]
    assert "channel" in form.errors and form.staged_name == "members.csv"
    # when the channel is chosen and the form sent again, without the file
    data = form_data(tmall, staged=form["staged"].value())
    response = post_upload(client, django_capture_on_commit_callbacks, data)
    # then the kept file is imported
    assert response.status_code == 302
    assert ImportJob.objects.get().original_name == "members.csv"


def test_a_forged_staged_token_is_ignored(org, tmall, login):
    response = login(org.admin).post(NEW, form_data(tmall, staged="../../settings.py"))
    assert "file" in response.context["form"].errors
    assert not ImportJob.objects.exists()


def test_unknown_columns_lead_to_the_mapping_form_and_the_mapping_is_saved(
    org, tmall, login, django_capture_on_commit_callbacks
):
    client = login(org.manager_a)
    rows = [["昵称", "号码串", "备注"], ["小王", "13800000011", "老客"]]
    # when a file whose columns no preset knows is uploaded
    response = post_upload(
        client, django_capture_on_commit_callbacks, form_data(tmall, upload(rows, "crm.csv"))
    )
    # then the form asks for the mapping, offering the file's columns
    form = response.context["form"]
    assert response.status_code == 200 and not ImportJob.objects.exists()
    assert "号码串" in " ".join(form.non_field_errors())  # the message lists the columns found
    assert [c for c, _ in form.fields["map_phone"].choices] == ["", "昵称", "号码串", "备注"]
    assert 'name="map_phone"' in response.content.decode()

    # when the columns are mapped and the mapping saved under a name
    data = form_data(
        tmall,
        staged=form["staged"].value(),
        mapping_step="1",
        map_name="昵称",
        map_phone="号码串",
        save_as="老系统导出",
    )
    response = post_upload(client, django_capture_on_commit_callbacks, data)

    # then the mapping is saved and the job uses it
    assert response.status_code == 302
    saved = SavedMapping.objects.get()
    assert (saved.name, saved.kind, saved.columns) == (
        "老系统导出",
        "customer",
        {"name": "昵称", "phone": "号码串"},
    )
    job = ImportJob.objects.get()
    assert (job.preset, job.columns, job.original_name) == ("", saved.columns, "crm.csv")
    assert job.state == ImportJob.State.PREVIEWED and job.preview["counts"]["created"] == 1

    # and the next file like it can pick the saved mapping
    response = post_upload(
        client,
        django_capture_on_commit_callbacks,
        form_data(tmall, upload(rows, "crm2.csv"), mapping=f"saved:{saved.pk}"),
    )
    assert response.status_code == 302 and ImportJob.objects.count() == 2

    # or is recognised by it, as by a preset, when nothing is picked
    more = [["备注", "号码串", "昵称"], ["新客", "13800000012", "小李"]]  # columns reordered
    response = post_upload(
        client, django_capture_on_commit_callbacks, form_data(tmall, upload(more, "crm3.csv"))
    )
    assert response.status_code == 302
    job = ImportJob.objects.get(original_name="crm3.csv")
    assert (job.preset, job.columns) == ("", saved.columns)
    assert job.preview["rows"][0]["fields"] == {"name": "小李"}


def test_the_mapping_form_guesses_the_columns_it_recognises(org, tmall, login):
    rows = [["客户姓名", "号码串"], ["小王", "13800000011"]]
    response = login(org.admin).post(NEW, form_data(tmall, upload(rows)))
    form = response.context["form"]
    assert form["map_name"].value() == "客户姓名" and not form["map_phone"].value()


def test_a_mapping_name_that_is_taken_is_refused_and_nothing_is_created(
    org, tmall, login, django_capture_on_commit_callbacks
):
    SavedMapping.objects.create(name="老系统导出", kind="customer", columns={"phone": "x"})
    client = login(org.admin)
    rows = [["昵称", "号码串"], ["小王", "13800000011"]]
    form = client.post(NEW, form_data(tmall, upload(rows))).context["form"]
    staged = form["staged"].value()
    data = form_data(
        tmall, staged=staged, mapping_step="1", map_phone="号码串", save_as="老系统导出"
    )
    response = post_upload(client, django_capture_on_commit_callbacks, data)
    assert response.status_code == 200
    assert "save_as" in response.context["form"].errors
    assert not ImportJob.objects.exists() and SavedMapping.objects.count() == 1


def test_a_mapping_without_an_identifier_is_refused_and_asked_again(org, tmall, login):
    client = login(org.admin)
    rows = [["昵称", "号码串"], ["小王", "13800000011"]]
    form = client.post(NEW, form_data(tmall, upload(rows))).context["form"]
    data = form_data(tmall, staged=form["staged"].value(), mapping_step="1", map_name="昵称")
    response = client.post(NEW, data)
    assert response.status_code == 200
    assert response.context["form"].mapping_fields and not ImportJob.objects.exists()
    assert response.context["form"]["map_name"].value() == "昵称"


@pytest.mark.parametrize("count", [2, 12])
def test_history_lists_jobs_in_a_fixed_number_of_queries(org, tmall, login, count):
    users = [org.admin.user, org.manager_a.user, None]
    for i in range(count):
        make_job(ChannelFactory(), users[i % 3], original_name=f"file{i}.csv")
    client = login(org.admin)
    with override_settings(SIYU_PAGE_SIZE=50), CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST)
    assert response.status_code == 200
    assert len(response.context["page"].items) == count
    assert "file0.csv" in response.content.decode()
    # the same number for 2 and 12 jobs: pinned
    assert len(ctx.captured_queries) == 4, [q["sql"] for q in ctx.captured_queries]


def test_history_pages_newest_first(org, tmall, login):
    jobs = [make_job(tmall, original_name=f"f{i}.csv") for i in range(5)]
    client = login(org.admin)
    with override_settings(SIYU_PAGE_SIZE=2):
        first = client.get(LIST).context["page"]
        second = client.get(LIST, {"after": first.next_cursor}).context["page"]
        bad = client.get(LIST, {"after": "xyz"})
    assert [j.pk for j in first.items] == [jobs[4].pk, jobs[3].pk]
    assert [j.pk for j in second.items] == [jobs[2].pk, jobs[1].pk]
    assert bad.status_code == 200


def test_progress_of_a_file_without_a_row_count_shows_the_rows_read(org, tmall, login):
    job = make_job(
        tmall,
        state=ImportJob.State.RUNNING,
        rows_total=0,  # an XLSX run without a preview: no cheap count
        rows_read=1500,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )

    content = login(org.admin).get(reverse("imports:detail", args=[job.pk])).content.decode()

    assert "已处理 1500 行" in content and "共约" not in content


def test_an_xlsx_upload_is_counted_exactly_by_its_preview(
    org, tmall, login, django_capture_on_commit_callbacks, tmp_path
):
    path = write_xlsx(tmp_path / "m.xlsx", {"会员": MEMBERS})
    upload_file = SimpleUploadedFile("m.xlsx", path.read_bytes())

    post_upload(login(org.admin), django_capture_on_commit_callbacks, form_data(tmall, upload_file))

    job = ImportJob.objects.get()
    assert (job.state, job.rows_total) == (ImportJob.State.PREVIEWED, len(MEMBERS) - 1)


def test_progress_partial_polls_while_running_and_stops_when_done(org, tmall, login):
    job = make_job(
        tmall,
        state=ImportJob.State.RUNNING,
        rows_total=200,
        rows_read=50,
        heartbeat_at=timezone.now(),
    )
    client = login(org.admin)
    url = reverse("imports:detail", args=[job.pk])

    running = client.get(url, headers={"HX-Request": "true"})

    assert running.templates[0].name == "imports/_progress.html"
    content = running.content.decode()
    assert 'hx-trigger="every 1s"' in content and "25%" in content
    assert reverse("imports:cancel", args=[job.pk]) in content

    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.DONE, created=7)
    done = client.get(url, headers={"HX-Request": "true"})

    assert "hx-trigger" not in done.content.decode()
    assert "<html" not in done.content.decode()


def test_a_failed_job_shows_the_reason_and_resumes(
    org, tmall, login, django_capture_on_commit_callbacks, tmp_path
):
    path = tmp_path / "m.csv"
    path.write_text(csv_text(MEMBERS), encoding="utf-8")
    job = make_job(tmall, file=str(path), preset="member_list", rows_total=6)
    ImportJob.objects.filter(pk=job.pk).update(
        state="failed", message="disk full", started_at=timezone.now()
    )
    client = login(org.admin)
    content = client.get(reverse("imports:detail", args=[job.pk])).content.decode()
    assert "disk full" in content and reverse("imports:start", args=[job.pk]) in content

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("imports:start", args=[job.pk]))

    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE and job.created == 3


def test_a_stalled_job_says_so_and_resumes_from_its_page(
    org, tmall, login, django_capture_on_commit_callbacks, tmp_path
):
    path = tmp_path / "m.csv"
    path.write_text(csv_text(MEMBERS), encoding="utf-8")
    started = timezone.now() - STALLED_AFTER - timedelta(minutes=1)
    job = make_job(
        tmall,
        file=str(path),
        preset="member_list",
        rows_total=6,
        state=ImportJob.State.RUNNING,
        runner="a killed worker",
        started_at=started,
        heartbeat_at=started,
    )
    client = login(org.admin)
    url = reverse("imports:detail", args=[job.pk])

    content = client.get(url).content.decode()

    assert "alert-warning" in content and 'hx-trigger="every 1s"' not in content
    assert reverse("imports:start", args=[job.pk]) in content
    assert reverse("imports:rollback", args=[job.pk]) in content
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("imports:start", args=[job.pk]))
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE and job.created == 3


def test_a_running_job_is_neither_restarted_nor_rolled_back(
    org, tmall, login, django_capture_on_commit_callbacks
):
    job = make_job(
        tmall,
        state=ImportJob.State.RUNNING,
        runner="a live worker",
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    client = login(org.admin)
    content = client.get(reverse("imports:detail", args=[job.pk])).content.decode()
    assert reverse("imports:start", args=[job.pk]) not in content
    assert reverse("imports:rollback", args=[job.pk]) not in content

    with django_capture_on_commit_callbacks() as callbacks:
        started = client.post(reverse("imports:start", args=[job.pk]), follow=True)
    rolled_back = client.post(reverse("imports:rollback", args=[job.pk]), follow=True)

    assert callbacks == [] and "alert-error" in started.content.decode()
    assert "cannot be rolled back" in rolled_back.content.decode()
    job.refresh_from_db()
    assert (job.state, job.runner) == (ImportJob.State.RUNNING, "a live worker")


def test_a_job_that_is_not_startable_is_not_queued(
    org, tmall, login, django_capture_on_commit_callbacks
):
    job = make_job(tmall, state=ImportJob.State.DONE)
    client = login(org.admin)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("imports:start", args=[job.pk]), follow=True)
    assert callbacks == []
    assert response.status_code == 200 and "alert-error" in response.content.decode()


def test_discarding_a_previewed_job_cancels_it(org, tmall, login):
    job = make_job(tmall, state=ImportJob.State.PREVIEWED, preview={"rows": [], "counts": {}})
    response = login(org.manager_b).post(reverse("imports:cancel", args=[job.pk]), follow=True)
    job.refresh_from_db()
    assert job.state == ImportJob.State.CANCELLED
    assert "nothing was written" in response.content.decode() or response.status_code == 200
    cancelled = AuditLog.objects.get(action=AuditLog.Action.UPDATE, target_id=str(job.pk))
    assert cancelled.actor == org.manager_b.user
    assert cancelled.summary == "cancelled the import of a.csv before it started"
    again = login(org.admin).post(reverse("imports:cancel", args=[job.pk]), follow=True)
    assert again.status_code == 200 and "alert-error" in again.content.decode()


def test_a_start_or_cancel_by_get_is_refused(org, tmall, login):
    job = make_job(tmall, state=ImportJob.State.PREVIEWED)
    client = login(org.admin)
    assert client.get(reverse("imports:start", args=[job.pk])).status_code == 405
    assert client.get(reverse("imports:cancel", args=[job.pk])).status_code == 405


def test_preview_masks_identifiers_for_viewers_without_full_pii(org, tmall, login):
    preview = {
        "counts": {"created": 1, "matched": 0, "merged": 0, "invalid": 0, "skipped": 0},
        "rows": [
            {
                "row": 2,
                "identifiers": ["phone:+8613812341234"],
                "phone_display": "",
                "fields": {"name": "<b>王</b>"},
                "errors": [],
            }
        ],
    }
    job = make_job(tmall, state=ImportJob.State.PREVIEWED, preview=preview)
    url = reverse("imports:detail", args=[job.pk])
    manager_view = login(org.manager_a).get(url).content.decode()
    assert "138****1234" in manager_view and "13812341234" not in manager_view
    assert "<b>王</b>" not in manager_view and "&lt;b&gt;王&lt;/b&gt;" in manager_view
    assert "+8613812341234" in login(org.admin).get(url).content.decode()


def test_no_error_report_for_a_job_without_failed_rows(org, tmall, login):
    job = make_job(tmall, state=ImportJob.State.DONE)
    client = login(org.admin)
    assert client.get(reverse("imports:errors_csv", args=[job.pk])).status_code == 404
    assert client.get(reverse("imports:detail", args=[99999])).status_code == 404
    assert not AuditLog.objects.filter(action=AuditLog.Action.EXPORT).exists()


def test_a_new_file_chosen_in_the_mapping_step_starts_afresh(
    org, tmall, login, django_capture_on_commit_callbacks
):
    client = login(org.admin)
    rows = [["昵称", "号码串"], ["小王", "13800000011"]]
    form = client.post(NEW, form_data(tmall, upload(rows))).context["form"]
    # when, instead of mapping, another file is chosen (the old selects still in the form)
    data = form_data(
        tmall, upload(MEMBERS), staged=form["staged"].value(), mapping_step="1", map_phone="号码串"
    )
    response = post_upload(client, django_capture_on_commit_callbacks, data)
    # then the new file is read on its own: its preset is detected
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert (job.original_name, job.preset) == ("members.csv", "member_list")


def test_an_admin_rolls_back_a_finished_import_from_its_page(org, login, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("姓名,手机号\n张三,13800000001\n", encoding="utf-8")
    channel = ChannelFactory(code="store")
    job = import_job_run(job=import_job_create(path=path, kind="customer", channel=channel))
    client = login(org.admin)
    assert f"/imports/{job.pk}/rollback/" in client.get(f"/imports/{job.pk}/").content.decode()

    response = client.post(f"/imports/{job.pk}/rollback/")

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == ImportJob.State.ROLLED_BACK and not Customer.objects.exists()
    assert login(org.staff_a).post(f"/imports/{job.pk}/rollback/").status_code == 404
