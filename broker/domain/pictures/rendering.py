"""Decoding a picture and writing what is served from its pixels: every frame decoded
under the pixel and frame limits; the served file and each rendition written anew,
upright, in sRGB, with no metadata, so nothing hidden in the upload is served.

This runs in a contained child process (see `contained`): it trusts nothing it reads.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from typing import Any

import pillow_heif
from PIL import Image, ImageOps, ImageSequence

from broker.domain.pictures.colour import in_srgb
from broker.domain.pictures.model import (
    DECODERS,
    SERVED_AS,
    PictureFile,
    PictureJob,
    Refusal,
    Rendered,
    RenditionSpec,
    renditions_served,
)
from broker.domain.pictures.streaming import STREAMED, STREAMED_FROM, render_streamed

pillow_heif.register_heif_opener()

# How a served file is written: no metadata arguments, so none is written.
_SERVED: dict[str, dict[str, Any]] = {
    "image/png": {"format": "PNG"},
    "image/jpeg": {"format": "JPEG", "quality": 90},
    "image/gif": {"format": "GIF"},
    "image/webp": {"format": "WEBP", "quality": 90},
    "image/avif": {"format": "AVIF", "quality": 80},
}
# Renditions are small and many: a little more compression.
_RENDITION: dict[str, dict[str, Any]] = {
    "image/png": {"format": "PNG"},
    "image/jpeg": {"format": "JPEG", "quality": 85},
    "image/webp": {"format": "WEBP", "quality": 82},
    "image/avif": {"format": "AVIF", "quality": 70},
}
_ANIMATED = frozenset({"image/gif", "image/webp", "image/avif"})
_NO_ALPHA = frozenset({"image/jpeg"})
_MAX_16_BIT = 0xFFFF  # what GIF and WebP can store: frame times (ms) and loop counts
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, KeyError,
                 IndexError, RuntimeError)


def render(job: PictureJob) -> Rendered:
    """Judge the pixels, then write the served file and the renditions from them: by
    libvips where it streams the picture, else by Pillow."""
    if job.content_type not in STREAMED or _pixels(job) < STREAMED_FROM:
        return render_by_pillow(job)  # libvips's start in a fresh child costs more than this
    streamed = render_streamed(job)
    return streamed if streamed is not None else render_by_pillow(job)


def _pixels(job: PictureJob) -> float:
    """The picture's pixels as its header says, read without decoding; infinite when
    Pillow cannot tell, so that libvips looks (and Pillow judges what it cannot open)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(job.data), formats=[DECODERS[job.content_type]]
                            ) as image:
                return float(image.width * image.height)
    except (Image.DecompressionBombError, *DECODE_ERRORS):
        return math.inf


def render_by_pillow(job: PictureJob) -> Rendered:
    """Every picture Pillow reads: animations, palettes, HEIC, CMYK without a profile."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # damaged tags Pillow skips
            with Image.open(io.BytesIO(job.data), formats=[DECODERS[job.content_type]]
                            ) as image:
                if refusal := _over_limits(image, job):
                    return Rendered(refusal)
                for frame in ImageSequence.Iterator(image):
                    frame.load()
                metadata = _metadata(image)
                if not job.reencode and not job.renditions:
                    return Rendered(metadata=metadata)
                return _written(image, job, metadata)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return Rendered(Refusal("decompression_bomb", str(exc)))
    except MemoryError:
        return Rendered(Refusal("decompression_bomb", "decoding needs more memory than "
                                                      "pictures are allowed"))
    except DECODE_ERRORS as exc:
        return Rendered(Refusal("malformed", f"the image does not decode: {exc}"))


def _over_limits(image: Image.Image, job: PictureJob) -> Refusal | None:
    width, height = image.size
    if width * height > job.max_pixels:
        return Refusal("decompression_bomb", f"{width}x{height} is over {job.max_pixels} pixels")
    frames = getattr(image, "n_frames", 1)
    if frames > job.max_frames:
        return Refusal("too_many_frames", f"{frames} frames, at most {job.max_frames}")
    return None


def _metadata(image: Image.Image) -> tuple[bytes, ...]:
    """The EXIF and XMP blocks of a HEIF or AVIF file, which no structure walk reads."""
    if image.format not in ("HEIF", "AVIF"):
        return ()
    return tuple(value for key in ("exif", "xmp")
                 if isinstance(value := image.info.get(key), bytes))


def _written(image: Image.Image, job: PictureJob, metadata: tuple[bytes, ...]) -> Rendered:
    image.seek(0)
    still = in_srgb(upright(image))
    served_type = SERVED_AS.get(job.content_type, job.content_type)
    served = None
    if job.reencode:
        served = _served(image, still, served_type)
    specs = renditions_served(job.renditions, served_type, job.reencode)
    renditions = tuple(rendition for spec in specs for rendition in _rendition(still, spec))
    return Rendered(served=served, renditions=renditions, metadata=metadata)


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; as it is when that EXIF is broken.
    HEIF decoders turn the picture themselves and reset the orientation they applied."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a damaged EXIF block only loses the orientation
        return image


def _served(image: Image.Image, still: Image.Image, served_type: str) -> PictureFile:
    out = io.BytesIO()
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and served_type in _ANIMATED:
        _save_animation(image, served_type, out)
    elif served_type == "image/gif":  # palette pictures keep their palette
        _palette_only(upright(image)).save(out, **_SERVED[served_type])
    else:
        _writable(still, served_type).save(out, **_SERVED[served_type])
    return PictureFile(served_type, still.width, still.height, out.getvalue())


def _palette_only(image: Image.Image) -> Image.Image:
    clean = image.copy()
    clean.info = {k: v for k, v in image.info.items() if k in ("transparency",)}
    if clean.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        clean = clean.convert("RGBA" if "A" in clean.mode else "RGB")
    return clean


def _writable(picture: Image.Image, content_type: str) -> Image.Image:
    """A copy with no metadata carried over, in a mode the format stores."""
    if content_type in _NO_ALPHA and picture.mode in ("LA", "RGBA"):
        flat = Image.new("RGB", picture.size, "white")
        flat.paste(picture.convert("RGBA"), mask=picture.getchannel("A"))
        return flat
    clean = picture.copy() if picture.info else picture
    clean.info = {}
    return clean


def _bounded(value: object, default: int) -> int:
    if not isinstance(value, int | float) or value != value:  # absent, odd or NaN
        return default
    return int(min(max(value, 0), _MAX_16_BIT))


def _save_animation(image: Image.Image, content_type: str, out: io.BytesIO) -> None:
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        frames.append(_writable(in_srgb(frame.convert("RGBA")), content_type))
        durations.append(_bounded(frame.info.get("duration", 100), 100))
    first, *rest = frames
    first.save(out, **_SERVED[content_type], save_all=True, append_images=rest,
               duration=durations, loop=_bounded(image.info.get("loop", 0), 0))


def _rendition(still: Image.Image, spec: RenditionSpec) -> list[PictureFile]:
    picture = _sized(still, spec)
    files = []
    for content_type in spec.formats:
        out = io.BytesIO()
        _writable(picture, content_type).save(out, **_RENDITION[content_type])
        files.append(PictureFile(content_type, picture.width, picture.height,
                                 out.getvalue(), spec.name))
    return files


def _sized(still: Image.Image, spec: RenditionSpec) -> Image.Image:
    """The picture scaled down to the spec (a crop cut from the middle): reduced by
    whole factors first, then resampled, which is fast and as sharp."""
    width, height = still.size
    size = spec.size_for(width, height)
    if size == (width, height):
        return still
    scale = max(size[0] / width, size[1] / height)
    crop_w, crop_h = size[0] / scale, size[1] / scale
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    return still.resize(size, Image.Resampling.LANCZOS,
                        box=(left, top, left + crop_w, top + crop_h), reducing_gap=2.0)
