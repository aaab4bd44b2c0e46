"""What an upload really is, judged by its bytes, not by its name or the browser's claim."""

import io

from django.utils.translation import gettext as _

# A digital X-ray is about 20 megapixels; a header that declares far more is a decompression bomb
# (a few bytes that would take gigabytes to decode in the watermark task).
MAX_IMAGE_PIXELS = 100_000_000


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
    _check_readable(content, media_type)
    return media_type


def _check_readable(content: bytes, media_type: str) -> None:
    """Refuse a file that starts like its type and then is not one: damaged, cut short, or a bomb.
    Only headers and structure are read (Pillow's verify, pydicom without pixels), never the pixels."""
    if media_type == "application/pdf":
        if b"%%EOF" not in content[-2048:]:
            raise UploadError(_("The PDF document is damaged or incomplete."))
        return
    try:
        if media_type == "application/dicom":
            import pydicom

            dataset = pydicom.dcmread(io.BytesIO(content), stop_before_pixels=True)
            # pydicom reads almost anything after "DICM"; a real object names its syntax and its class.
            if not (dataset.file_meta.get("TransferSyntaxUID") and dataset.get("SOPClassUID")):
                raise UploadError(_("The file is damaged or incomplete."))
            return
        from PIL import Image

        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UploadError(
                    _("The image is %(width)s x %(height)s pixels; the limit is %(limit)s megapixels.")
                    % {"width": width, "height": height, "limit": MAX_IMAGE_PIXELS // 1_000_000}
                )
            image.verify()
        # Pillow's verify passes a file cut after its last image chunk; both formats end in a marker.
        if media_type == "image/png" and b"IEND\xaeB`\x82" not in content[-65536:]:
            raise UploadError(_("The file is damaged or incomplete."))
        if media_type == "image/jpeg" and b"\xff\xd9" not in content[-65536:]:
            raise UploadError(_("The file is damaged or incomplete."))
    except UploadError:
        raise
    except Exception:  # whatever a decoder throws at hostile bytes means the same: not a readable file
        raise UploadError(_("The file is damaged or incomplete.")) from None
