"""Imported by the fork server only: Pillow's decoders and encoders, and LittleCMS's
sRGB, made ready once, so that each child starts with them ready (a small picture takes
a few milliseconds; loading them again in every child took four times that). libvips is
left cold: its work would start threads, which a process that forks must not have."""

from __future__ import annotations

import io

from PIL import Image

from broker.domain.pictures.model import PictureJob, RenditionSpec
from broker.domain.pictures.rendering import render_by_pillow


def _warm() -> None:
    Image.init()  # every format's plugin, registered now rather than at first use
    sample = Image.new("RGBA", (16, 12), (200, 40, 30, 255))
    for fmt, content_type in (("PNG", "image/png"), ("JPEG", "image/jpeg"),
                              ("GIF", "image/gif"), ("WEBP", "image/webp")):
        out = io.BytesIO()
        (sample if fmt in ("PNG", "WEBP") else sample.convert("RGB")).save(out, fmt)
        render_by_pillow(PictureJob(
            out.getvalue(), content_type, 10_000, 1, reencode=True,
            renditions=(RenditionSpec(8, 8, "crop", ("image/webp", "image/jpeg")),)))


_warm()
