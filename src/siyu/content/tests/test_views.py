"""The content pages: who reads and who edits, scope on the profile panel, copying counts a
use, bad input answers 400, and list pages stay at a fixed number of queries."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from siyu.content.models import Material, Script, TrackedLink
from siyu.content.tests.factories import MaterialFactory, ScriptFactory, category
from siyu.customers.tests.factories import CustomerFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.parametrize("who", ["admin", "manager_a", "staff_a"])
def test_everyone_reads_the_libraries(org, login, who):
    ScriptFactory(title="开场白", body="{customer.name}您好")
    MaterialFactory(title="春季新品", tags="新品")
    client = login(getattr(org, who))
    scripts = client.get(reverse("content:scripts")).content.decode()
    assert "开场白" in scripts and 'href="/content/"' in scripts  # the navigation area
    assert "春季新品" in client.get(reverse("content:materials")).content.decode()


def test_staff_cannot_edit(org, login):
    script, material = ScriptFactory(), MaterialFactory()
    client = login(org.staff_a)
    page = client.get(reverse("content:scripts")).content.decode()
    assert reverse("content:script_new") not in page
    for name, args in [
        ("content:script_new", []),
        ("content:script_edit", [script.pk]),
        ("content:category_new", []),
        ("content:material_new", []),
        ("content:material_edit", [material.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 404
        assert client.post(reverse(name, args=args), {"title": "x"}).status_code == 404
    assert client.post(reverse("content:script_archive", args=[script.pk])).status_code == 404
    script.refresh_from_db()
    assert script.active


def test_a_manager_creates_a_script_and_sees_unknown_variables_named(org, login):
    client = login(org.manager_a)
    data = {"category": category("qa").pk, "title": "营业时间", "body": "{customer.nick}您好"}
    response = client.post(reverse("content:script_new"), data)
    assert response.status_code == 400
    assert "{customer.nick}" in response.content.decode()
    data["body"] = "{customer.name}您好，{store.name}每天10点营业"
    assert client.post(reverse("content:script_new"), data).status_code == 302
    script = Script.objects.get()
    assert script.created_by == org.manager_a and script.category.builtin == "qa"


def test_search_and_category_filter(org, login):
    ScriptFactory(title="开场白", body="欢迎", category=category("greeting"))
    ScriptFactory(title="售后回访", body="使用感受如何", category=category("after_sales"))
    client = login(org.staff_a)
    by_body = client.get(reverse("content:scripts"), {"q": "感受"}).context["scripts"]
    assert [s.title for s in by_body] == ["售后回访"]
    by_category = client.get(
        reverse("content:scripts"), {"category": category("greeting").pk}
    ).context["scripts"]
    assert [s.title for s in by_category] == ["开场白"]
    # a category that does not exist filters nothing out instead of failing
    assert client.get(reverse("content:scripts"), {"category": "abc"}).status_code == 200


def test_archive_hides_a_script_until_restored(org, login):
    script = ScriptFactory(title="旧话术")
    client = login(org.manager_a)
    client.post(reverse("content:script_archive", args=[script.pk]))
    assert "旧话术" not in client.get(reverse("content:scripts")).content.decode()
    assert "旧话术" in client.get(reverse("content:scripts"), {"archived": "1"}).content.decode()
    client.post(reverse("content:script_archive", args=[script.pk]))
    assert "旧话术" in client.get(reverse("content:scripts")).content.decode()


def test_a_material_is_uploaded_previewed_and_served(org, login):
    client = login(org.manager_a)
    response = client.post(
        reverse("content:material_new"),
        {
            "kind": "poster",
            "title": "双十一海报",
            "status": "published",
            "body": '<p>限时<img src=x onerror="alert(1)"></p>',
            "image": SimpleUploadedFile("poster.png", b"\x89PNG-data", content_type="image/png"),
        },
    )
    assert response.status_code == 302
    material = Material.objects.get()
    assert material.owner == org.manager_a and "onerror" not in material.body
    preview = login(org.staff_a).get(reverse("content:material_preview", args=[material.pk]))
    html = preview.content.decode()
    assert "双十一海报" in html and "onerror" not in html and 'name="viewport"' in html
    image_url = reverse("content:upload", args=[material.image.name])
    assert image_url in html
    assert b"".join(login(org.staff_a).get(image_url).streaming_content) == b"\x89PNG-data"
    # editing keeps the upload and shows it
    client = login(org.manager_a)
    edit_url = reverse("content:material_edit", args=[material.pk])
    assert image_url in client.get(edit_url).content.decode()
    data = {"kind": "poster", "title": "双十二海报", "status": "archived"}
    assert client.post(edit_url, data).status_code == 302
    material.refresh_from_db()
    assert (material.title, material.status) == ("双十二海报", "archived")
    assert material.image.name in image_url


def test_bad_uploads_and_paths_are_refused(org, login):
    client = login(org.manager_a)
    response = client.post(
        reverse("content:material_new"),
        {
            "kind": "file",
            "title": "脚本",
            "status": "draft",
            "file": SimpleUploadedFile("run.exe", b"MZ"),
        },
    )
    assert response.status_code == 400 and not Material.objects.exists()
    assert client.get("/content/uploads/content/../../settings.py").status_code in (400, 404)
    assert client.get("/content/uploads/other/secret.txt").status_code == 404
    assert client.get("/content/uploads/content/missing.png").status_code == 404


def test_uploads_serve_only_files_under_content(org, login, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "ok.txt").write_text("ok")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "secret.txt").write_text("secret")
    client = login(org.staff_a)
    assert client.get("/content/uploads/content/ok.txt").status_code == 200
    assert client.get("/content/uploads/other/secret.txt").status_code == 404
    assert client.get("/content/uploads/content/../other/secret.txt").status_code == 404


def panel_url(customer) -> str:
    return reverse("content:customer_scripts", args=[customer.pk])


def test_the_profile_panel_personalises_scripts(org, login):
    customer = CustomerFactory(owner=org.staff_a, name="王小美")
    material = MaterialFactory(title="新品手册", url="https://shop.example/new")
    ScriptFactory(
        title="新品分享",
        body="{customer.name}，{staff.nickname}给您推荐{material.title} {material.link}",
        material=material,
    )
    client = login(org.staff_a)
    profile = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert panel_url(customer) in profile
    html = client.get(panel_url(customer), **HTMX).content.decode()
    # {material.link} is the viewer's tracked link for this customer, the same on every show.
    link = TrackedLink.objects.get(material=material, staff=org.staff_a, customer=customer)
    expected = f"王小美，{org.staff_a.nickname}给您推荐新品手册 http://testserver/m/{link.code}"
    assert expected in html
    assert client.get(panel_url(customer), **HTMX).content.decode().count(link.code) == 1
    assert TrackedLink.objects.count() == 1
    assert reverse("content:script_copied", args=[Script.objects.get().pk]) in html


def test_the_panel_searches_and_filters(org, login):
    customer = CustomerFactory(owner=org.staff_a)
    ScriptFactory(title="开场白", category=category("greeting"))
    ScriptFactory(title="售后回访", category=category("after_sales"))
    client = login(org.staff_a)
    found = client.get(panel_url(customer), {"q": "回访"}, **HTMX).context["rendered"]
    assert [s.title for s, _ in found] == ["售后回访"]
    found = client.get(panel_url(customer), {"category": category("greeting").pk}, **HTMX).context[
        "rendered"
    ]
    assert [s.title for s, _ in found] == ["开场白"]


def test_the_panel_is_404_outside_the_viewers_scope(org, login):
    theirs = CustomerFactory(owner=org.staff_b)
    ScriptFactory()
    assert login(org.staff_a).get(panel_url(theirs), **HTMX).status_code == 404
    assert login(org.manager_a).get(panel_url(theirs), **HTMX).status_code == 404
    assert login(org.manager_b).get(panel_url(theirs), **HTMX).status_code == 200


def test_copying_counts_a_use(org, login):
    script = ScriptFactory()
    client = login(org.staff_a)
    url = reverse("content:script_copied", args=[script.pk])
    assert client.get(url).status_code == 405
    assert client.post(url, **HTMX).status_code == 204
    assert client.post(url, **HTMX).status_code == 204
    script.refresh_from_db()
    assert script.usage_count == 2
    assert client.post(reverse("content:script_copied", args=[99999])).status_code == 404


def test_the_library_shows_each_scripts_reply_rate_over_campaign_sends(org, login):
    ScriptFactory(title="复购提醒", usage_count=50, sent_count=40, reply_count=10)
    ScriptFactory(title="开场白", usage_count=7)  # copied by staff, never sent by a campaign

    content = login(org.manager_a).get(reverse("content:scripts")).content.decode()

    rows = {t: content.split(t, 1)[1].split("</tr>", 1)[0] for t in ("复购提醒", "开场白")}
    assert "25%" in rows["复购提醒"] and "(10/40)" in rows["复购提醒"]
    assert "%" not in rows["开场白"] and "—" in rows["开场白"]


def test_list_pages_use_a_fixed_number_of_queries(org, login, django_assert_num_queries):
    client = login(org.manager_a)
    customer = CustomerFactory(owner=org.staff_a)

    def add_rows(n: int) -> None:
        for _ in range(n):
            ScriptFactory(material=MaterialFactory(owner=org.staff_a))

    add_rows(2)
    urls = [
        reverse("content:scripts"),
        reverse("content:materials"),
        panel_url(customer),
    ]
    counts = [len(_queries(client, url)) for url in urls]
    add_rows(20)
    assert [len(_queries(client, url)) for url in urls] == counts
    with django_assert_num_queries(counts[0]):
        client.get(urls[0])
    # The panel's last three: its materials' tracked links, the new ones inserted and read back.
    assert counts == [5, 4, 11]


def _queries(client, url: str):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return captured.captured_queries
