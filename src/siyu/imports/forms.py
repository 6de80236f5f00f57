"""The new-import form: what the file holds, where it came from, how to read and map it."""

from pathlib import Path

from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from siyu.core.errors import DomainError
from siyu.imports.models import ImportJob, SavedMapping
from siyu.imports.presets import PRESETS, PRESETS_BY_KEY, TARGETS, normalize_header
from siyu.imports.tag_rows import parse_tag

# Big platform exports run to a few hundred thousand rows; beyond this, split the file.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
# .xls is let through so the reader can say how to convert it.
SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls")
ENCODINGS = [
    ("", _("Detect automatically")),
    ("utf-8", "UTF-8"),
    ("gb18030", "GB18030"),
    ("gbk", "GBK"),
    ("big5", "Big5"),  # Taiwan and Hong Kong: detection reads mainland encodings first
]
MAP_PREFIX = "map_"

TARGET_LABELS = {
    "name": _("Name"),
    "phone": _("Phone"),
    "email": _("E-mail"),
    "gender": _("Gender"),
    "birthday": _("Birthday"),
    "province": _("Province"),
    "city": _("City"),
    "tags": _("Tags"),
    "level": _("Member level"),
    "member_no": _("Member number"),
    "tmall_buyer": _("Taobao/Tmall buyer"),
    "jd_buyer": _("JD buyer"),
    "douyin_buyer": _("Douyin buyer"),
    "xiaohongshu_buyer": _("Xiaohongshu buyer"),
    "wechat_unionid": _("WeChat UnionID"),
    "wecom_external_userid": _("WeCom external user ID"),
    "external_order_id": _("Order number"),
    "line_id": _("Sub-order number"),
    "receiver_name": _("Receiver"),
    "amount": _("Amount paid"),
    "status": _("Order status"),
    "refund_status": _("After-sales status"),
    "created_at": _("Ordered at"),
    "paid_at": _("Paid at"),
    "refund_amount": _("Refund amount"),
    "product_id": _("Product ID"),
    "product_title": _("Product title"),
    "sku": _("SKU code"),
    "quantity": _("Quantity"),
    "unit_price": _("Unit price"),
}


def target_label(target: str) -> str:
    return str(TARGET_LABELS.get(target, target))


def column_guesses(header: list[str], kind: str) -> dict[str, str]:
    """A first guess at a hand mapping: headers that a preset of `kind` knows by name."""
    known: dict[str, str] = {}
    for preset in PRESETS:
        if preset.kind == kind:
            for column in preset.columns:
                for alias in (column.target, *column.aliases):
                    known.setdefault(normalize_header(alias), column.target)
    guesses: dict[str, str] = {}
    for name in header:
        target = known.get(normalize_header(name)) if name else None
        if target in TARGETS[kind] and target not in guesses:
            guesses[target] = name
    return guesses


class ImportForm(forms.Form):
    """Parses the upload form. With `header` (the file's columns, when no preset fitted) it
    also carries one select per target field: the hand mapping."""

    kind = forms.ChoiceField(
        label=_("The file holds"), choices=ImportJob.Kind.choices, initial=ImportJob.Kind.CUSTOMERS
    )
    # Required except for tags files (checked in clean): those only label existing people.
    channel = forms.ModelChoiceField(
        label=_("Source channel"),
        queryset=None,
        required=False,
        empty_label=_("Choose a channel"),
    )
    tag = forms.CharField(
        label=_("Tag for every row"),
        required=False,
        max_length=101,
        help_text=_(
            "Tags files only: put this tag on every customer in the file, written as "
            "group:tag or just the tag."
        ),
    )
    file = forms.FileField(
        label=_("File"),
        required=False,
        widget=forms.FileInput(attrs={"accept": ",".join(SUFFIXES)}),
    )
    encoding = forms.ChoiceField(label=_("Encoding"), required=False, choices=ENCODINGS)
    sheet = forms.CharField(
        label=_("Sheet"),
        required=False,
        max_length=100,
        help_text=_("XLSX only; empty: the first sheet with data."),
    )
    mapping = forms.ChoiceField(label=_("Column mapping"), required=False)
    staged = forms.CharField(required=False, widget=forms.HiddenInput)
    mapping_step = forms.BooleanField(required=False, widget=forms.HiddenInput)
    save_as = forms.CharField(
        label=_("Save this mapping as"),
        required=False,
        max_length=100,
        help_text=_("Optional: a name to pick this mapping for the next file like this one."),
    )

    def __init__(
        self,
        data=None,
        files=None,
        *,
        channels,
        saved,
        header: list[str] | None = None,
        staged_name: str = "",
    ) -> None:
        super().__init__(data, files)
        self.staged_name = staged_name
        self.header = header
        self.fields["file"].help_text = _("CSV or XLSX, at most %(size)s.") % {
            "size": filesizeformat(MAX_UPLOAD_BYTES)
        }
        self.saved = {m.pk: m for m in saved}
        self.fields["channel"].queryset = channels
        self.fields["mapping"].choices = [
            ("", _("Detect from the column names")),
            *(
                (group, [(f"preset:{p.key}", p.label) for p in PRESETS if p.kind == kind])
                for kind, group in (
                    (ImportJob.Kind.CUSTOMERS, _("Built-in: customers")),
                    (ImportJob.Kind.ORDERS, _("Built-in: orders")),
                    (ImportJob.Kind.TAGS, _("Built-in: tags")),
                )
            ),
        ]
        if self.saved:
            self.fields["mapping"].choices += [
                (_("Saved mappings"), [(f"saved:{m.pk}", m.name) for m in self.saved.values()])
            ]
        self.targets: tuple[str, ...] = ()
        if header is not None:
            kind = self.data.get("kind") if self.is_bound else None
            self.targets = TARGETS.get(kind, TARGETS[ImportJob.Kind.CUSTOMERS])
            options = [("", _("— not imported —")), *((h, h) for h in header if h)]
            for target in self.targets:
                self.fields[MAP_PREFIX + target] = forms.ChoiceField(
                    label=target_label(target), required=False, choices=options
                )

    @property
    def mapping_fields(self) -> list[forms.BoundField]:
        return [self[MAP_PREFIX + t] for t in self.targets]

    def with_staged(self, token: str, name: str) -> None:
        """Carry an already uploaded file into the re-shown form, so it need not be chosen
        again."""
        self.data = self.data.copy()
        self.data["staged"] = token
        self.staged_name = name

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is None:
            return None
        if Path(upload.name).suffix.lower() not in SUFFIXES:
            raise forms.ValidationError(
                _("Upload a CSV or XLSX file (%(suffixes)s)."),
                params={"suffixes": " ".join(SUFFIXES)},
            )
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is %(size)s; the limit is %(limit)s. Split it into smaller files."),
                params={
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(MAX_UPLOAD_BYTES),
                },
            )
        return upload

    def clean_save_as(self) -> str:
        name = self.cleaned_data.get("save_as", "").strip()
        if name and SavedMapping.objects.filter(name=name).exists():
            raise forms.ValidationError(
                _("A saved mapping named “%(name)s” exists already; choose another name."),
                params={"name": name},
            )
        return name

    def clean_tag(self) -> str:
        tag = self.cleaned_data.get("tag", "").strip()
        if tag:
            try:
                parse_tag(tag)
            except DomainError:
                raise forms.ValidationError(
                    _("Write the tag as group:tag or just the tag, at most 50 characters each.")
                ) from None
        return tag

    def clean(self):
        data = super().clean()
        if not data.get("file") and not self.staged_name and "file" not in self.errors:
            self.add_error("file", _("Choose the file to import."))
        kind = data.get("kind")
        tags_file = kind == ImportJob.Kind.TAGS
        if not tags_file and not data.get("channel") and "channel" not in self.errors:
            self.add_error("channel", _("Choose the channel the file comes from."))
        if data.get("tag") and kind and not tags_file:
            self.add_error("tag", _("A tag for every row is only for tags files."))
        data["preset"], data["columns"] = None, None
        if self.header is not None:
            columns = {t: data[MAP_PREFIX + t] for t in self.targets if data.get(MAP_PREFIX + t)}
            data["columns"] = columns or None
            if data.get("save_as") and not columns:
                self.add_error("save_as", _("Map at least one column to save the mapping."))
            return data
        chosen, _sep, key = (data.get("mapping") or "").partition(":")
        if chosen == "preset":
            preset = PRESETS_BY_KEY[key]
            data["preset"] = key
            if kind and preset.kind != kind:
                self.add_error("mapping", self._kind_mismatch(preset.label, preset.kind))
        elif chosen == "saved":
            saved = self.saved.get(int(key))
            data["columns"] = saved.columns
            if kind and saved.kind != kind:
                self.add_error("mapping", self._kind_mismatch(saved.name, saved.kind))
        return data

    @staticmethod
    def _kind_mismatch(name: str, kind: str) -> str:
        return _("“%(name)s” is a mapping for %(kind)s files; choose another.") % {
            "name": name,
            "kind": ImportJob.Kind(kind).label if kind in ImportJob.Kind.values else kind,
        }


class PageForm(forms.Form):
    """The history's page links; a malformed one is ignored (the first page is shown)."""

    after = forms.IntegerField(required=False, min_value=1)
    before = forms.IntegerField(required=False, min_value=1)
