from django import forms
from django.utils.translation import gettext_lazy as _

from siliconhealth.tiers import PROFILES

from . import costmodel


class CostModelForm(forms.Form):
    tier = forms.ChoiceField(
        label=_("Tier"), choices=[(t, PROFILES[t].label if t in PROFILES else t) for t in costmodel.TIERS]
    )
    years = forms.IntegerField(label=_("Years"), min_value=1, max_value=costmodel.MAX_YEARS)
