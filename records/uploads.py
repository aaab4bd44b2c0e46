"""What an upload really is, judged by its bytes, not by its name or the browser's claim."""

from django.utils.translation import gettext as _


class UploadError(ValueError):
    pass


_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
]
_EXTENSIONS = {
    "image/png": {".png"},
    "image/jpeg": {".jpg", ".jpeg"},
    "image/tiff": {".tif", ".tiff"},
    "application/pdf": {".pdf"},
    "application/dicom": {".dcm", ".dicom", ""},
}


def sniff_upload(content: bytes, filename: str) -> str:
    """The media type of an accepted upload (PNG, JPEG, TIFF, DICOM, PDF), or UploadError."""
    if not content:
        raise UploadError(_("The file is empty."))
    media_type = None
    for signature, kind in _SIGNATURES:
        if content.startswith(signature):
            media_type = kind
            break
    if media_type is None and len(content) > 132 and content[128:132] == b"DICM":
        media_type = "application/dicom"
    if media_type is None:
        raise UploadError(_("Only PNG, JPEG, TIFF, DICOM images and PDF documents can be attached."))
    name = filename.lower()
    extension = name[name.rfind(".") :] if "." in name else ""
    if extension not in _EXTENSIONS[media_type]:
        raise UploadError(
            _("The file's name says %(ext)s but its content is %(kind)s.")
            % {"ext": extension or _("no extension"), "kind": media_type}
        )
    return media_type
