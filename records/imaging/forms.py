from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _


class CheckImageForm(forms.Form):
    file = forms.FileField(label=_("Image to check (PNG, TIFF, DICOM)"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("This file is %(size)s; the limit is %(limit)s.")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(settings.MAX_UPLOAD_BYTES)}
            )
        self.content = upload.read()
        return upload
