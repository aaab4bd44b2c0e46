"""Losslessly compressed DICOM (JPEG-LS, JPEG 2000, RLE) is read, marked, and written back as
uncompressed Explicit VR Little Endian with its pixels intact apart from the +-1 watermark."""

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from records.imaging import codec, formats

from .helpers import KEY, PAYLOAD


@pytest.mark.parametrize(
    "name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"]
)
def test_lossless_dicom_round_trip(name):
    source = get_testdata_file(name)  # shipped inside pydicom: never downloaded
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    pixels, meta = formats.load_image(open(source, "rb").read())
    assert not meta.lossy_source
    assert np.array_equal(pixels, reference)  # lossless means lossless
    out = formats.save_image(codec.embed(pixels, PAYLOAD, KEY), meta)
    written = pydicom.dcmread(io.BytesIO(out))
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert np.abs(written.pixel_array.astype(int) - reference.astype(int)).max() == 1
    assert codec.extract(formats.load_image(out)[0], KEY) == PAYLOAD
