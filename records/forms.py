"""Forms of the clinic UI. They validate input and build service arguments; they never save."""

import datetime as dt
from decimal import Decimal

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .codes import VITAL_SIGNS, icd10_codes
from .models import Encounter, Patient
from .services import DiagnosisInput, EncounterInput, PrescriptionInput, VitalSign
from .uploads import UploadError, sniff_upload

PRESCRIPTION_ROWS = 3
DIAGNOSIS_ROWS = 2


class PatientForm(forms.Form):
    given_name = forms.CharField(label=_("Given name"), max_length=100)
    family_name = forms.CharField(label=_("Family name"), max_length=100)
    sex = forms.ChoiceField(label=_("Sex"), choices=Patient.Sex.choices)
    birth_date = forms.DateField(
        label=_("Birth date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    age_years = forms.IntegerField(label=_("or age in years"), required=False, min_value=0, max_value=120)
    village = forms.CharField(label=_("Village"), max_length=100, required=False)
    phone = forms.RegexField(label=_("Phone"), regex=r"^\+?[0-9 ]{6,20}$", required=False, max_length=32)
    confirm_new = forms.BooleanField(label=_("None of these: this is a new person"), required=False)

    def clean(self):
        data = super().clean()
        birth_date, age = data.get("birth_date"), data.get("age_years")
        if birth_date is None and age is None and not self.has_error("birth_date"):
            raise forms.ValidationError(_("Give a birth date or an age."))
        if birth_date is None and age is not None:
            today = timezone.localdate()
            data["birth_date"] = dt.date(today.year - age, 7, 1)
            data["birth_date_estimated"] = True
        else:
            data["birth_date_estimated"] = False
        if data.get("birth_date") and data["birth_date"] > timezone.localdate():
            self.add_error("birth_date", _("A birth date cannot be in the future."))
        return data


def _diagnosis_choices():
    return [("", "—")] + [(c.code, f"{c.code} {c.display}") for c in icd10_codes().values()]


class EncounterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type of visit"), choices=Encounter.Kind.choices)
    reason = forms.CharField(label=_("Reason for visit"), max_length=255, required=False)
    note = forms.CharField(
        label=_("Clinical note"), required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 5})
    )

    def __init__(self, *args, can_prescribe: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_prescribe = can_prescribe
        for kind in VITAL_SIGNS:
            self.fields[kind.key] = forms.DecimalField(
                label=kind.label,
                required=False,
                max_digits=9,
                decimal_places=2,
                min_value=Decimal(kind.minimum),
                max_value=Decimal(kind.maximum),
                widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
            )
        if can_prescribe:
            for row in range(DIAGNOSIS_ROWS):
                self.fields[f"diagnosis_{row}"] = forms.ChoiceField(
                    label=_("Diagnosis (ICD-10)"), choices=_diagnosis_choices(), required=False
                )
            for row in range(PRESCRIPTION_ROWS):
                self.fields[f"medication_{row}"] = forms.CharField(
                    label=_("Medication"), max_length=200, required=False
                )
                self.fields[f"dose_{row}"] = forms.CharField(label=_("Dose"), max_length=100, required=False)
                self.fields[f"frequency_{row}"] = forms.CharField(
                    label=_("Frequency"), max_length=100, required=False
                )
                self.fields[f"days_{row}"] = forms.IntegerField(
                    label=_("Days"), min_value=1, max_value=365, required=False
                )

    def vital_fields(self):
        return [self[kind.key] for kind in VITAL_SIGNS]

    def diagnosis_fields(self):
        return [self[f"diagnosis_{row}"] for row in range(DIAGNOSIS_ROWS)] if self.can_prescribe else []

    def prescription_rows(self):
        if not self.can_prescribe:
            return []
        return [
            [self[f"{name}_{row}"] for name in ("medication", "dose", "frequency", "days")]
            for row in range(PRESCRIPTION_ROWS)
        ]

    def clean(self):
        data = super().clean()
        if self.can_prescribe:
            for row in range(PRESCRIPTION_ROWS):
                details = [data.get(f"{n}_{row}") for n in ("dose", "frequency", "days")]
                if any(details) and not data.get(f"medication_{row}"):
                    self.add_error(f"medication_{row}", _("Name the medication."))
        return data

    def to_input(self) -> EncounterInput:
        data = self.cleaned_data
        result = EncounterInput(kind=data["kind"], reason=data.get("reason", ""), note=data.get("note", ""))
        for kind in VITAL_SIGNS:
            if data.get(kind.key) is not None:
                result.vitals.append(VitalSign(kind.code, data[kind.key]))
        if self.can_prescribe:
            seen = set()
            for row in range(DIAGNOSIS_ROWS):
                code = data.get(f"diagnosis_{row}")
                if code and code not in seen:
                    seen.add(code)
                    result.diagnoses.append(DiagnosisInput(code))
            for row in range(PRESCRIPTION_ROWS):
                if data.get(f"medication_{row}"):
                    result.prescriptions.append(
                        PrescriptionInput(
                            data[f"medication_{row}"],
                            data.get(f"dose_{row}", ""),
                            data.get(f"frequency_{row}", ""),
                            data.get(f"days_{row}"),
                        )
                    )
        return result


class AttachmentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    file = forms.FileField(label=_("Image or document"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("This file is %(size)s; the limit is %(limit)s.")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(settings.MAX_UPLOAD_BYTES)}
            )
        content = upload.read()
        try:
            self.media_type = sniff_upload(content, upload.name)
        except UploadError as error:
            raise forms.ValidationError(str(error)) from None
        self.content = content
        return upload


class MergeForm(forms.Form):
    duplicate_number = forms.CharField(label=_("Patient number of the duplicate record"), max_length=32)
