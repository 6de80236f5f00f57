"""Saved segments in the console: the builder's live count, save/duplicate/delete rights,
snapshots, exports, and pages whose query count does not grow with the data."""

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from siyu.core.models import AuditLog
from siyu.customers.models import Customer
from siyu.customers.tests.factories import CustomerFactory, PhoneIdentityFactory
from siyu.org.selectors import viewer_for
from siyu.segments.dsl import segment_count
from siyu.segments.dsl import vocabulary as dsl_vocabulary
from siyu.segments.models import Segment, SegmentSnapshot
from siyu.segments.segment_services import segment_create, segment_snapshot_create
from siyu.tags.models import CustomerTag
from siyu.tags.tests.factories import TagFactory

WOMEN = {"attr": "gender", "op": "eq", "value": "f"}
PREVIEW = reverse("segments:preview")


@pytest.fixture
def pool(org):
    """Women and men across both stores, each with a known phone."""
    people = {
        "a_f": CustomerFactory(name="王小红", owner=org.staff_a, gender="f", province="上海"),
        "a_m": CustomerFactory(name="王小明", owner=org.staff_a, gender="m"),
        "a2_f": CustomerFactory(name="李四", owner=org.staff_a2, gender="f"),
        "b_f": CustomerFactory(name="赵六", owner=org.staff_b, gender="f"),
    }
    for n, customer in enumerate(people.values()):
        PhoneIdentityFactory(customer=customer, value=f"+861381234000{n}")
    return people


@pytest.fixture
def women(org):
    return segment_create(name="女性客户", description="性别为女", definition=WOMEN)


def preview(client, definition):
    body = definition if isinstance(definition, str) else json.dumps(definition)
    return client.post(PREVIEW, {"definition": body})


# ---------------------------------------------------------------------------- live count


@pytest.mark.parametrize(("who", "expected"), [("admin", 3), ("manager_a", 2), ("staff_a", 1)])
def test_preview_counts_within_the_viewers_scope(org, pool, login, who, expected):
    response = preview(login(getattr(org, who)), WOMEN)
    assert response.status_code == 200
    assert response.context["count"] == expected
    assert f'data-count="{expected}"' in response.content.decode()


def test_preview_samples_members_with_phones_masked_per_role(org, pool, login):
    staff_page = preview(login(org.staff_a), WOMEN).content.decode()
    assert "王小红" in staff_page and "李四" not in staff_page and "赵六" not in staff_page
    assert "138****0000" in staff_page and "+8613812340000" not in staff_page
    assert reverse("customers:detail", args=[pool["a_f"].pk]) in staff_page
    admin_page = preview(login(org.admin), WOMEN).content.decode()
    assert "+8613812340000" in admin_page and "赵六" in admin_page


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"all": [WOMEN, {"attr": "gender", "op": "eq", "value": "x"}]}, "all[1].value"),
        ({"any": []}, "any: must be a non-empty list"),
        ({"all": [{"tags": {"any": ["vip"]}}]}, "all[0].tags.any[0]"),
        ({"attr": "shoe_size", "op": "eq", "value": 42}, "attr: unknown attribute"),
        ('{"all": [', "JSON"),
        ("", ""),
    ],
)
def test_preview_rejects_a_bad_definition_with_its_path(org, pool, login, definition, message):
    response = preview(login(org.staff_a), definition)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'data-preview="error"' in response.content.decode()


def test_preview_is_post_only_and_needs_a_login(client, org):
    assert client.post(PREVIEW, {"definition": json.dumps(WOMEN)}).status_code == 302
    login_client = client
    login_client.force_login(org.staff_a.user)
    assert login_client.get(PREVIEW).status_code == 405


# ---------------------------------------------------------------------------- save


def test_manager_saves_a_new_segment(org, pool, login):
    client = login(org.manager_a)
    assert client.get(reverse("segments:new")).status_code == 200
    response = client.post(
        reverse("segments:new"),
        {"name": "上海女性", "description": "上海的女客户", "definition": json.dumps(WOMEN)},
    )
    segment = Segment.objects.get(name="上海女性")
    assert response.status_code == 302
    assert response["Location"] == reverse("segments:detail", args=[segment.pk])
    assert segment.description == "上海的女客户"
    assert segment.definition == WOMEN
    assert segment.created_by == org.manager_a.user


def test_saving_an_invalid_definition_shows_the_path_and_keeps_the_input(org, login):
    bad = {"all": [{"attr": "age", "op": "gte", "value": "old"}]}
    response = login(org.admin).post(
        reverse("segments:new"), {"name": "老客户", "definition": json.dumps(bad)}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "all[0].value" in content
    assert response.context["definition"] == json.dumps(bad)
    assert not Segment.objects.exists()


def test_a_segment_name_is_unique(org, women, login):
    response = login(org.admin).post(
        reverse("segments:new"), {"name": "女性客户", "definition": json.dumps(WOMEN)}
    )
    assert response.status_code == 400
    assert Segment.objects.count() == 1


def test_manager_edits_a_segment(org, women, login):
    men = {"attr": "gender", "op": "eq", "value": "m"}
    response = login(org.manager_b).post(
        reverse("segments:edit", args=[women.pk]),
        {"name": "男性客户", "description": "", "definition": json.dumps(men)},
    )
    assert response.status_code == 302
    women.refresh_from_db()
    assert (women.name, women.definition) == ("男性客户", men)


def test_staff_may_look_and_count_but_not_write(org, pool, women, login):
    client = login(org.staff_a)
    # the builder opens to count, without a save form
    page = client.get(reverse("segments:new"), {"from": women.pk})
    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()
    assert json.loads(page.context["definition"]) == WOMEN
    assert client.get(reverse("segments:detail", args=[women.pk])).status_code == 200
    # every write answers 404, like a page outside the role
    body = {"name": "x", "definition": json.dumps(WOMEN)}
    assert client.post(reverse("segments:new"), body).status_code == 404
    assert client.get(reverse("segments:edit", args=[women.pk])).status_code == 404
    assert client.post(reverse("segments:edit", args=[women.pk]), body).status_code == 404
    assert client.post(reverse("segments:duplicate", args=[women.pk])).status_code == 404
    assert client.post(reverse("segments:delete", args=[women.pk])).status_code == 404
    assert client.post(reverse("segments:snapshot_create", args=[women.pk])).status_code == 404
    assert list(Segment.objects.values_list("name", flat=True)) == ["女性客户"]
    assert not SegmentSnapshot.objects.exists()


def test_duplicate_makes_a_copy_under_a_free_name(org, women, login):
    client = login(org.manager_a)
    client.post(reverse("segments:duplicate", args=[women.pk]))
    response = client.post(reverse("segments:duplicate", args=[women.pk]))
    copies = Segment.objects.exclude(pk=women.pk).order_by("pk")
    assert [c.definition for c in copies] == [WOMEN, WOMEN]
    assert len({c.name for c in copies} | {women.name}) == 3
    assert response["Location"] == reverse("segments:edit", args=[copies.last().pk])


def test_delete_keeps_snapshots_and_is_audited(org, pool, women, login):
    snapshot = segment_snapshot_create(segment=women, viewer=viewer_for(org.admin.user))
    response = login(org.admin).post(reverse("segments:delete", args=[women.pk]))
    assert response.status_code == 302
    assert not Segment.objects.exists()
    snapshot.refresh_from_db()
    assert snapshot.segment is None and snapshot.members.count() == 3
    entry = AuditLog.objects.get(action=AuditLog.Action.DELETE)
    assert entry.target_type == "segments.segment" and entry.detail["definition"] == WOMEN


# ---------------------------------------------------------------------------- pages


def test_list_counts_each_segment_in_the_viewers_scope(org, pool, women, login):
    segment_create(name="全部男性", definition={"attr": "gender", "op": "eq", "value": "m"})
    for who, expected in (("admin", [3, 1]), ("manager_b", [1, 0]), ("staff_a", [1, 1])):
        response = login(getattr(org, who)).get(reverse("segments:list"))
        assert response.status_code == 200
        counts = {segment.name: count for segment, count in response.context["rows"]}
        assert [counts["女性客户"], counts["全部男性"]] == expected


def test_list_marks_a_definition_that_no_longer_compiles(org, women, login):
    Segment.objects.create(name="坏的", definition={"attr": "gone"})
    response = login(org.admin).get(reverse("segments:list"))
    assert response.status_code == 200
    assert dict((s.name, c) for s, c in response.context["rows"])["坏的"] is None


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_page_query_count_does_not_grow_with_segments(org, pool, women, login):
    client = login(org.manager_a)
    # session, user, viewer, the segments, one aggregate counting all of them
    few = _queries(client, reverse("segments:list"))
    assert few == 5
    for n in range(5):
        segment_create(name=f"分群{n}", definition={"attr": "rfm_r", "op": "gte", "value": 3})
    assert _queries(client, reverse("segments:list")) == few


def test_detail_page_query_count_does_not_grow_with_members(org, pool, women, login):
    client = login(org.admin)
    url = reverse("segments:detail", args=[women.pk])
    # session, user, viewer, the segment, a page of members, the count, the snapshots
    few = _queries(client, url)
    assert few == 7
    for _ in range(10):
        PhoneIdentityFactory(customer=CustomerFactory(owner=org.staff_b, gender="f"))
    segment_snapshot_create(segment=women, viewer=viewer_for(org.admin.user))
    assert _queries(client, url) == few


def test_detail_lists_members_in_scope_with_keyset_pages(org, pool, women, login, settings):
    settings.SIYU_PAGE_SIZE = 1
    client = login(org.manager_a)
    url = reverse("segments:detail", args=[women.pk])
    first = client.get(url)
    assert first.context["count"] == 2
    assert [c.name for c in first.context["page"].items] == ["李四"]
    cursor = first.context["page"].next_cursor
    second = client.get(url, {"after": cursor}, headers={"HX-Request": "true"})
    assert [c.name for c in second.context["page"].items] == ["王小红"]
    assert "<html" not in second.content.decode()  # the htmx pager swaps the table only
    assert "赵六" not in first.content.decode() + second.content.decode()


def test_unknown_segment_is_404(org, login):
    assert login(org.admin).get(reverse("segments:detail", args=[999])).status_code == 404


# ---------------------------------------------------------------------------- snapshots


def test_snapshot_freezes_the_members_the_viewer_counts(org, pool, women, login):
    response = login(org.manager_a).post(
        reverse("segments:snapshot_create", args=[women.pk]), {"name": "三月活动"}
    )
    assert response.status_code == 302
    snapshot = SegmentSnapshot.objects.get()
    assert snapshot.name == "三月活动" and snapshot.created_by == org.manager_a.user
    assert snapshot.size == segment_count(WOMEN, viewer_for(org.manager_a.user)) == 2
    frozen = set(snapshot.members.values_list("customer_id", flat=True))
    assert frozen == {pool["a_f"].pk, pool["a2_f"].pk}
    # when the data changes, the snapshot does not
    Customer.objects.filter(pk=pool["a_f"].pk).update(gender="m")
    CustomerFactory(owner=org.staff_a, gender="f")
    assert set(snapshot.members.values_list("customer_id", flat=True)) == frozen
    assert segment_count(WOMEN, viewer_for(org.manager_a.user)) == 2  # a different two
    page = login(org.manager_a).get(reverse("segments:detail", args=[women.pk]))
    assert "三月活动" in page.content.decode()


def test_snapshot_service_names_itself_and_copies_the_definition(org, pool, women):
    snapshot = segment_snapshot_create(segment=women, viewer=viewer_for(org.admin.user))
    assert snapshot.name.startswith("女性客户 ") and snapshot.definition == WOMEN
    assert snapshot.size == 3


# ---------------------------------------------------------------------------- exports


def _csv_rows(response) -> list[list[str]]:
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_staff_export_is_scoped_masked_and_audited(org, pool, women, login):
    response = login(org.staff_a).post(reverse("segments:export", args=[women.pk, "csv"]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    header, *rows = _csv_rows(response)
    assert len(header) == 9
    assert rows == [[row[0], "138****0000", *row[2:]] for row in rows]
    assert [row[0] for row in rows] == ["王小红"]
    assert rows[0][3] == "上海"
    entry = AuditLog.objects.get(action=AuditLog.Action.EXPORT)
    assert (entry.actor, entry.target_id) == (org.staff_a.user, str(women.pk))
    assert entry.detail == {"rows": 1, "format": "csv", "masked": True}


def test_admin_export_has_full_phones_tags_and_escaped_formulas(org, pool, women, login):
    tag = TagFactory(name="高价值")
    CustomerTag.objects.create(customer=pool["b_f"], tag=tag, source="manual")
    CustomerFactory(name='=HYPERLINK("http://x")', gender="f", owner=org.staff_b)
    response = login(org.admin).post(reverse("segments:export", args=[women.pk, "csv"]))
    _, *rows = _csv_rows(response)
    by_name = {row[0]: row for row in rows}
    assert len(rows) == 4
    # a leading + would be read as a formula, so it is quoted like every such cell
    assert by_name["赵六"][1] == "'+8613812340003"
    assert by_name["赵六"][6] == "高价值"
    assert '\'=HYPERLINK("http://x")' in by_name
    assert AuditLog.objects.get(action="export").detail["rows"] == 4


def test_xlsx_export(org, pool, women, login):
    response = login(org.manager_a).post(reverse("segments:export", args=[women.pk, "xlsx"]))
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    assert len(rows) == 3  # the header and the two women of store A
    assert {row[0] for row in rows[1:]} == {"王小红", "李四"}
    assert all("****" in row[1] for row in rows[1:])
    assert AuditLog.objects.get(action="export").detail["format"] == "xlsx"


def test_export_of_an_unknown_format_is_refused(org, women, login):
    response = login(org.admin).post(reverse("segments:export", args=[women.pk, "pdf"]))
    assert response.status_code == 400
    assert not AuditLog.objects.filter(action="export").exists()


def test_export_needs_post(org, women, login):
    response = login(org.admin).get(reverse("segments:export", args=[women.pk, "csv"]))
    assert response.status_code == 405


# ---------------------------------------------------------------------------- customer list


def test_customer_list_shows_a_segments_members_in_scope(org, pool, women, login):
    response = login(org.manager_a).get(reverse("customers:list"), {"segment": women.pk})
    assert response.status_code == 200
    assert {c.name for c in response.context["page"].items} == {"王小红", "李四"}
    assert "女性客户" in response.content.decode()  # which segment is shown
    # combined with a search
    response = login(org.manager_a).get(reverse("customers:list"), {"segment": women.pk, "q": "李"})
    assert [c.name for c in response.context["page"].items] == ["李四"]


def test_customer_list_reports_an_unknown_segment(org, pool, login):
    response = login(org.admin).get(reverse("customers:list"), {"segment": 999})
    assert response.status_code == 200
    assert response.context["form"].errors["segment"]


def test_bulk_tagging_takes_a_segment(org, pool, women, login):
    tag = TagFactory()
    client = login(org.manager_a)
    url = f"{reverse('tags:bulk')}?segment={women.pk}"
    assert client.get(url).context["count"] == 2
    client.post(url, {"tag": tag.pk, "action": "add"})
    tagged = set(CustomerTag.objects.filter(tag=tag).values_list("customer_id", flat=True))
    assert tagged == {pool["a_f"].pk, pool["a2_f"].pk}


def test_builder_offers_every_attribute_and_only_the_viewers_staff(org, login):
    TagFactory(name="高价值")
    response = login(org.staff_a).get(reverse("segments:new"))
    vocabulary = response.context["vocabulary"]
    names = {a["name"] for a in vocabulary["attributes"]}
    assert names == {a["name"] for a in dsl_vocabulary()["attributes"]}
    owner = next(a for a in vocabulary["attributes"] if a["name"] == "owner")
    assert [pk for pk, label in owner["choices"]] == [org.staff_a.pk]
    assert [t[1] for g in vocabulary["tag_groups"] for t in g["tags"]] == ["高价值"]
    # session, user, viewer, then staff, stores, channels, tag groups, tags, event types
    assert _queries(login(org.staff_a), reverse("segments:new")) == 9


def test_export_reads_members_in_batches_without_a_query_per_customer(
    org, pool, women, login, monkeypatch
):
    monkeypatch.setattr("siyu.segments.segment_services.EXPORT_BATCH", 2)
    client = login(org.admin)
    url = reverse("segments:export", args=[women.pk, "csv"])
    with CaptureQueriesContext(connection) as few:
        _, *rows = _csv_rows(client.post(url))
    assert len(rows) == 3
    for _ in range(4):
        CustomerFactory(owner=org.staff_b, gender="f")
    with CaptureQueriesContext(connection) as more:
        _, *rows = _csv_rows(client.post(url))
    # every member once, across batches of two; one more batch costs two queries
    assert len(rows) == len({row[0] for row in rows}) == 7
    assert len(more.captured_queries) == len(few.captured_queries) + 2 * 2


def test_an_export_over_the_cap_is_refused_before_reading_members(
    org, pool, women, login, monkeypatch
):
    monkeypatch.setattr("siyu.segments.segment_services.EXPORT_MAX_ROWS", 2)
    response = login(org.admin).post(reverse("segments:export", args=[women.pk, "xlsx"]))
    assert response.status_code == 400
    assert "2" in response.context["error"]
    assert not AuditLog.objects.filter(action="export").exists()


def test_the_audit_log_links_an_export_to_its_segment(org, pool, women, login):
    login(org.staff_a).post(reverse("segments:export", args=[women.pk, "csv"]))
    page = login(org.admin).get(reverse("core:audit")).content.decode()
    assert f'href="{reverse("segments:detail", args=[women.pk])}"' in page
