"""The fast path, by libvips: JPEG, PNG, WebP and AVIF stills of 2 megapixels or more,
in the common colour spaces, are decoded, converted and written a few lines at a time
(a picture that must be turned is held once), and renditions are made from one
shrink-on-load decode. Other pictures (small ones, animations, palettes kept as
palettes, HEIC, CMYK without a profile) are left to Pillow (`rendering`)."""

from __future__ import annotations

import contextlib
import math

import pyvips

from broker.domain.pictures.model import (
    SERVED_AS,
    PictureFile,
    PictureJob,
    Refusal,
    Rendered,
    RenditionSpec,
    renditions_served,
)

STREAMED = frozenset({"image/jpeg", "image/png", "image/webp", "image/avif"})
# Pictures of at least this many pixels go through libvips; Pillow is quicker below.
STREAMED_FROM = 2_000_000
_72_DPI = 72 / 25.4  # pixels a millimetre
_PLAIN = frozenset({"srgb", "b-w", "rgb16", "grey16"})
_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
           "image/avif": ".avif"}
# Writers' options, as the Pillow path's: no metadata is ever kept. PNG rows filtered
# adaptively, as libpng does by default: half the size of unfiltered rows for photos.
_PNG: dict[str, int | str] = {"filter": "all", "compression": 4}
_SERVED: dict[str, dict[str, int | str]] = {
    "image/jpeg": {"Q": 90}, "image/png": _PNG, "image/webp": {"Q": 90},
    "image/avif": {"Q": 80}}
_RENDITION: dict[str, dict[str, int | str]] = {
    "image/jpeg": {"Q": 85}, "image/png": _PNG, "image/webp": {"Q": 82},
    "image/avif": {"Q": 70}}


def one_thread_no_cache() -> None:
    """libvips in this process works on one thread and keeps no operations cached."""
    pyvips.vips_lib.vips_concurrency_set(1)
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)


def render_streamed(job: PictureJob, smallest: int = STREAMED_FROM) -> Rendered | None:
    """The job done by libvips; None when the picture is one for the Pillow path."""
    if job.content_type not in STREAMED:
        return None
    try:
        header = pyvips.Image.new_from_buffer(job.data, "")
    except pyvips.Error:
        return None  # Pillow judges what libvips cannot open, and says why
    if header.width * header.height < smallest:
        return None  # Pillow is quicker on small pictures, and they are small in memory
    icc = _blob(header, "icc-profile-data")
    pages = header.get("n-pages") if header.get_typeof("n-pages") else 1
    if pages > 1 or not (header.interpretation in _PLAIN
                         or (header.interpretation == "cmyk" and icc)):
        return None
    if header.width * header.height > job.max_pixels:
        return Rendered(Refusal("decompression_bomb", f"{header.width}x{header.height} is "
                                                      f"over {job.max_pixels} pixels"))
    metadata = tuple(b for b in (_blob(header, "exif-data"), _blob(header, "xmp-data"))
                     if b) if job.content_type == "image/avif" else ()
    served_type = SERVED_AS.get(job.content_type, job.content_type)
    try:
        served = None
        if job.reencode:  # writing the served file decodes every pixel: the check too
            served = _write(_served_pixels(job.data, header), served_type, _SERVED)
        else:
            _opened(job.data, access="sequential").avg()  # every pixel decodes
    except pyvips.Error as exc:
        if "out of memory" in str(exc.detail):
            return Rendered(Refusal("decompression_bomb", "decoding needs more memory than "
                                                          "pictures are allowed"))
        return Rendered(Refusal("malformed", f"the image does not decode: {_first(exc)}"))
    specs = renditions_served(job.renditions, served_type, job.reencode)
    return Rendered(served=served, renditions=_renditions(job.data, header, specs),
                    metadata=metadata)


def _opened(data: bytes, access: str) -> pyvips.Image:
    """Decoding stops at the first error; a picture held whole is held in memory (the
    child may not write files), under the child's memory limit."""
    held = {"memory": True} if access == "random" else {}
    return pyvips.Image.new_from_buffer(data, "", access=access, fail_on="error", **held)


def _orientation(header: pyvips.Image) -> int:
    """The EXIF orientation (1: as stored)."""
    return int(header.get("orientation")) if header.get_typeof("orientation") else 1


def _served_pixels(data: bytes, header: pyvips.Image) -> pyvips.Image:
    """Upright, in 8-bit sRGB (or grey): streamed, unless it must be turned."""
    turned = _orientation(header) not in (0, 1)
    image = _opened(data, "random" if turned else "sequential")
    return _in_srgb(image).autorot() if turned else _in_srgb(image)


def _in_srgb(image: pyvips.Image) -> pyvips.Image:
    """Through its embedded profile to sRGB; 16 bits to 8. A profile LittleCMS cannot
    use, or that does not fit the pixels, is ignored, as browsers ignore it."""
    if _blob(image, "icc-profile-data"):
        with contextlib.suppress(pyvips.Error):
            image = image.icc_transform("srgb", embedded=True, intent="perceptual", depth=8)
    if image.format != "uchar" or image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb" if image.bands >= 3 else "b-w")
    return image


def _write(image: pyvips.Image, content_type: str,
           options: dict[str, dict[str, int | str]],
           name: str = "") -> PictureFile:
    if content_type == "image/jpeg" and image.bands in (2, 4):  # JPEG has no alpha: on white
        image = image.flatten(background=[255] * (image.bands - 1))
    # The writers always store a resolution: the same one for every file, not the upload's.
    image = image.copy(xres=_72_DPI, yres=_72_DPI)
    data = image.write_to_buffer(_SUFFIX[content_type], keep="none", **options[content_type])
    return PictureFile(content_type, image.width, image.height, data, name)


def _renditions(data: bytes, header: pyvips.Image, specs: tuple[RenditionSpec, ...]
                ) -> tuple[PictureFile, ...]:
    """One shrink-on-load decode to the largest size any rendition needs, held in
    memory (it is small); every rendition is cut and scaled from it."""
    if not specs:
        return ()
    turned = _orientation(header) in (5, 6, 7, 8)
    width, height = (header.height, header.width) if turned else (header.width, header.height)
    scale = min(1.0, max(_scale(spec, width, height) for spec in specs))
    base = _in_srgb(pyvips.Image.thumbnail_buffer(
        data, math.ceil(width * scale), height=math.ceil(height * scale), size="down",
        export_profile="srgb")).copy_memory()
    files = []
    for spec in specs:
        picture = base if spec.width is None else _sized(base, spec, width, height)
        files += [_write(picture, kind, _RENDITION, spec.name) for kind in spec.formats]
    return tuple(files)


def _scale(spec: RenditionSpec, width: int, height: int) -> float:
    """How much of the picture's resolution the rendition needs."""
    box_w, box_h = spec.size_for(width, height)
    return max(box_w / width, box_h / height)


def _sized(base: pyvips.Image, spec: RenditionSpec, width: int, height: int) -> pyvips.Image:
    """As the Pillow path sizes it (a crop cut from the middle)."""
    box_w, box_h = spec.size_for(width, height)
    if (box_w, box_h) == (base.width, base.height):
        return base
    return base.thumbnail_image(box_w, height=box_h, crop="centre", size="force")


def _blob(image: pyvips.Image, name: str) -> bytes | None:
    if image.get_typeof(name) == 0:
        return None
    value = image.get(name)
    return bytes(value) if value else None


def _first(exc: pyvips.Error) -> str:
    detail = (exc.detail or str(exc)).strip().splitlines()
    return detail[0] if detail else str(exc)
