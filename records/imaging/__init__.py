"""Medical image watermarking: pure codec (numpy + reedsolo), file formats, tamper maps.  No Django here.

* ``codec``   - ``embed(pixels, payload, key)``, ``verify(pixels, key) -> VerifyResult``
* ``formats`` - ``load_image(bytes, declared_media_type)``, ``save_image(pixels, meta)``, ``sniff_media_type``
* ``tamper``  - ``TamperMap``, ``overlay_png``
* ``metrics`` - ``psnr``, ``ssim``
* ``damage``  - synthetic damage and ``robustness_report`` for tests and benchmarks
"""
