from django import forms


class PageForm(forms.Form):
    """The keyset cursor of the campaign list."""

    after = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
