"""Colours as the uploader saw them: whatever mode a decoder produced, the picture comes
out in 8-bit sRGB (greyscale kept grey, alpha kept), converted through its embedded
ICC profile, so a served file needs no profile to look right in any browser."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageCms

# Modes a served picture has: grey or colour, with or without alpha.
SERVED_MODES = frozenset({"L", "LA", "RGB", "RGBA"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
# 16-bit grey to 8-bit by rounding (Pillow's own conversion clips: nearly all white).
_TO_EIGHT_BIT = [min(255, (value + 128) // 257) for value in range(65536)]
# An ICC profile's colour space, by the mode of pixels it can convert.
_SPACE_OF_MODE = {"RGB": "RGB ", "L": "GRAY", "CMYK": "CMYK"}
# Profile classes that describe a device or a colour space; links and abstract profiles
# transform between two others and describe nothing alone.
_DESCRIBING = frozenset({"mntr", "scnr", "prtr", "spac"})


def in_srgb(image: Image.Image) -> Image.Image:
    """The picture in one of SERVED_MODES, its pixels in sRGB. A profile that cannot be
    read, or that does not fit the pixels, is ignored, as browsers ignore it."""
    icc = image.info.get("icc_profile")
    plain = _plain_mode(image)
    if plain.mode == "LAB":
        return _through(plain, _lab_profile())
    profile = _readable_profile(icc, plain.mode)
    if profile is not None:
        return _through(plain, profile)
    if plain.mode == "CMYK":  # no profile: the naive conversion, as browsers do
        return plain.convert("RGB")
    return plain


def _plain_mode(image: Image.Image) -> Image.Image:
    """8 bits a channel in L, LA, RGB, RGBA, CMYK or LAB, transparency as alpha."""
    mode = image.mode
    transparency = image.info.get("transparency")
    if mode in _SIXTEEN_BIT:
        wide = image if mode == "I" else image.convert("I")
        grey = wide.point(_TO_EIGHT_BIT, "L")
        if isinstance(transparency, int):  # tRNS names one 16-bit grey level
            clear = [255] * 65536
            if 0 <= transparency < 65536:
                clear[transparency] = 0
            grey.putalpha(wide.point(clear, "L"))
        return grey
    if mode in ("1", "F"):
        return image.convert("L")
    if mode in ("L", "RGB") and transparency is not None:
        return image.convert("LA" if mode == "L" else "RGBA")
    if mode in ("P", "PA"):
        return image.convert("RGBA" if transparency is not None or mode == "PA" else "RGB")
    if mode == "La":  # premultiplied
        return image.convert("LA")
    if mode in ("RGBa", "RGBX", "YCbCr", "HSV"):
        return image.convert("RGBA" if mode == "RGBa" else "RGB")
    return image


def _readable_profile(icc: object, mode: str) -> ImageCms.ImageCmsProfile | None:
    if not isinstance(icc, bytes) or not icc:
        return None
    colour_mode = mode.removesuffix("A") if mode in ("LA", "RGBA") else mode
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space
        kind = profile.profile.device_class
    except (OSError, ValueError, TypeError):
        return None
    if space != _SPACE_OF_MODE.get(colour_mode) or kind not in _DESCRIBING:
        return None
    return profile


def _through(image: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image:
    """The colour channels converted to sRGB through the profile; alpha untouched."""
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    colour = image.convert(image.mode[:-1]) if alpha is not None else image
    try:
        converted = ImageCms.profileToProfile(
            colour, profile, _srgb_profile(), outputMode="RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL)
    except ImageCms.PyCMSError:  # a profile LittleCMS cannot build a transform from
        converted = colour.convert("RGB")
    assert converted is not None
    if image.mode in ("L", "LA"):  # a grey picture stays grey: smaller, and exact
        converted = converted.convert("L")
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@cache
def _lab_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
