"""Input parsing for the content pages; the services check every rule again."""

from django import forms
from django.core.validators import FileExtensionValidator
from django.utils.translation import gettext_lazy as _

from siyu.content.formatting import VARIABLES, braced
from siyu.content.models import FILE_EXTENSIONS, IMAGE_EXTENSIONS, Material, ScriptCategory
from siyu.content.selectors import published_materials, script_categories
from siyu.customers.models import Channel

MAX_UPLOAD = 10 * 1024 * 1024


def _small(upload):
    if upload and upload.size > MAX_UPLOAD:
        raise forms.ValidationError(_("The file is larger than 10 MB."))
    return upload


class CategoryChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ScriptCategory) -> str:
        return str(obj.label)


class ScriptFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    category = CategoryChoiceField(
        label=_("Category"), queryset=script_categories(), required=False
    )


class ScriptCategoryForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=50)
    order = forms.IntegerField(label=_("Sort order"), min_value=0, initial=100, required=False)


class ScriptForm(forms.Form):
    category = CategoryChoiceField(label=_("Category"), queryset=script_categories())
    title = forms.CharField(label=_("Title"), max_length=100)
    body = forms.CharField(
        label=_("Text"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Variables: %(names)s") % {"names": braced(VARIABLES)},
    )
    material = forms.ModelChoiceField(
        label=_("Material"), queryset=published_materials(), required=False
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS), _small],
    )
    miniprogram_appid = forms.CharField(
        label=_("Mini-program appid"), max_length=64, required=False
    )
    miniprogram_path = forms.CharField(label=_("Mini-program page"), max_length=200, required=False)
    miniprogram_title = forms.CharField(
        label=_("Mini-program card title"), max_length=64, required=False
    )


class MaterialFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[("", _("All kinds")), *Material.Kind.choices], required=False
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("All statuses")), *Material.Status.choices],
        required=False,
    )


class MaterialForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=Material.Kind.choices)
    title = forms.CharField(label=_("Title"), max_length=100)
    summary = forms.CharField(label=_("Summary"), max_length=300, required=False)
    body = forms.CharField(
        label=_("Body"),
        required=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text=_("Articles: HTML with paragraphs, headings, lists, links and images."),
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS), _small],
    )
    file = forms.FileField(
        label=_("File"),
        required=False,
        validators=[FileExtensionValidator(FILE_EXTENSIONS), _small],
    )
    url = forms.URLField(label=_("External link"), required=False, assume_scheme="https")
    tags = forms.CharField(
        label=_("Tags"), max_length=200, required=False, help_text=_("Separated by commas.")
    )
    status = forms.ChoiceField(label=_("Status"), choices=Material.Status.choices)


class ViewPageForm(forms.Form):
    """The keyset cursor of a material's views list."""

    after = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class ShareForm(forms.Form):
    """Share with one customer (by id, picked from the search) or with a channel."""

    customer = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    channel = forms.ModelChoiceField(
        label=_("Channel"), queryset=Channel.objects.order_by("name", "pk"), required=False
    )

    def clean(self):
        data = super().clean()
        if bool(data.get("customer")) == bool(data.get("channel")):
            raise forms.ValidationError(_("Pick one customer or one channel."))
        return data


class CaseMaterialForm(forms.Form):
    """A case (testimonial) from a delivered order; content.selectors.case_prefill fills it."""

    title = forms.CharField(label=_("Title"), max_length=100)
    customer_label = forms.CharField(
        label=_("Customer, as shown"),
        max_length=50,
        required=False,
        help_text=_("Masked by default; write the full name only with the customer's consent."),
    )
    products = forms.CharField(label=_("Products"), max_length=300, required=False)
    amount = forms.DecimalField(
        label=_("Amount"), max_digits=14, decimal_places=2, min_value=0, required=False
    )
    quote = forms.CharField(
        label=_("What the customer said"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS), _small],
    )
