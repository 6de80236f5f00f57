"""Writes of the content library: categories, scripts, materials, usage counts."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from siyu.content.models import Material, Script, ScriptCategory
from siyu.content.services import (
    material_create,
    material_update,
    script_category_create,
    script_create,
    script_set_active,
    script_update,
    script_used,
)
from siyu.content.tests.factories import MaterialFactory, ScriptFactory, category
from siyu.core.errors import DomainError

pytestmark = pytest.mark.django_db


def test_the_six_builtin_categories_exist_in_order():
    keys = list(ScriptCategory.objects.values_list("builtin", flat=True))
    assert keys == ["greeting", "sharing", "daily", "qa", "activation", "after_sales"]
    with translation.override("en"):
        assert [str(c.label) for c in ScriptCategory.objects.all()][:2] == ["Greeting", "Sharing"]
    with translation.override("zh-hans"):
        assert [str(c.label) for c in ScriptCategory.objects.all()][:2] == ["打招呼", "分享"]


def test_a_brand_category_needs_a_free_name():
    own = script_category_create(name=" 直播预告 ", order=10)
    assert own.name == "直播预告" and own.label == "直播预告"
    with pytest.raises(DomainError) as exc:
        script_category_create(name="直播预告")
    assert exc.value.field == "name"


def test_a_script_is_created_with_its_attachments():
    material = MaterialFactory()
    image = SimpleUploadedFile("card.png", b"\x89PNG", content_type="image/png")
    script = script_create(
        created_by=None,
        category=category("sharing"),
        title=" 新品分享 ",
        body="{customer.name}，看看{material.title}：{material.link}",
        material=material,
        image=image,
        miniprogram_appid="wx123",
        miniprogram_path="pages/p?id=1",
        miniprogram_title="新品",
    )
    script.refresh_from_db()
    assert script.title == "新品分享" and script.material == material
    assert script.image.name.startswith("content/scripts/card")
    assert (script.miniprogram_appid, script.usage_count, script.active) == ("wx123", 0, True)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("你好{customer.nick}", "{customer.nick}"),
        ("{0}{customer.__class__}", "{customer.__class__}"),
    ],
)
def test_unknown_variables_are_refused_by_name(body, named):
    with pytest.raises(DomainError) as exc:
        script_create(created_by=None, category=category(), title="t", body=body)
    assert exc.value.field == "body" and named in exc.value.message
    assert not Script.objects.exists()


def test_a_draft_material_cannot_be_attached():
    draft = MaterialFactory(status=Material.Status.DRAFT)
    with pytest.raises(DomainError) as exc:
        script_create(created_by=None, category=category(), title="t", body="hi", material=draft)
    assert exc.value.field == "material"


def test_update_keeps_the_image_and_checks_the_text():
    script = ScriptFactory()
    script_update(script=script, category=category("qa"), title="答疑", body="{store.name}营业时间")
    script.refresh_from_db()
    assert (script.title, script.category.builtin) == ("答疑", "qa")
    with pytest.raises(DomainError):
        script_update(script=script, category=category("qa"), title="答疑", body="{x}")


def test_usage_counts_add_up_and_skip_archived_scripts():
    script = ScriptFactory()
    assert script_used(script_id=script.pk) == 1
    assert script_used(script_id=script.pk) == 1
    script_set_active(script=script, active=False)
    assert script_used(script_id=script.pk) == 0
    script.refresh_from_db()
    assert script.usage_count == 2


def test_an_article_body_is_stored_sanitised():
    material = material_create(
        kind=Material.Kind.ARTICLE,
        title="护肤指南",
        body='<p onclick="x()">好文<script>alert(1)</script></p>',
        tags="护肤, ,新品 ",
        status=Material.Status.PUBLISHED,
    )
    material.refresh_from_db()
    assert material.body == "<p>好文</p>"
    assert material.tag_list == ["护肤", "新品"]


@pytest.mark.parametrize(
    ("kind", "field"),
    [("article", "body"), ("poster", "image"), ("product", "url"), ("file", "file"), ("x", "kind")],
)
def test_each_kind_needs_its_piece(kind, field):
    with pytest.raises(DomainError) as exc:
        material_create(kind=kind, title="t", body="<script>only</script>")
    assert exc.value.field == field


def test_an_update_keeps_earlier_uploads():
    poster = material_create(
        kind=Material.Kind.POSTER,
        title="海报",
        image=SimpleUploadedFile("p.jpg", b"jpg", content_type="image/jpeg"),
    )
    material_update(material=poster, kind="poster", title="新海报", status="published")
    poster.refresh_from_db()
    assert poster.title == "新海报" and poster.image.name.startswith("content/images/p")
