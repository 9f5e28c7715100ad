"""What picture work is asked for and what it gives back: plain values, so a child
process can take the job and return the result."""

from __future__ import annotations

from dataclasses import dataclass, field

# What each decoder reads, by detected type.
DECODERS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF",
            "image/webp": "WEBP", "image/avif": "AVIF", "image/heic": "HEIF",
            "image/heif": "HEIF"}
# What a re-encoded picture is served as, where browsers cannot show the upload's type.
SERVED_AS = {"image/heic": "image/jpeg", "image/heif": "image/jpeg"}
# Formats a rendition may be written in, by the name a profile uses.
RENDITION_FORMATS = {"webp": "image/webp", "jpeg": "image/jpeg", "avif": "image/avif",
                     "png": "image/png"}


@dataclass(frozen=True)
class RenditionSpec:
    """One size a profile asks for: at most `width` wide ("fit", within `height` too when
    given) or exactly `width` x `height` cut from the middle ("crop"); in each format.
    No width: the picture's own size (a fallback in another format)."""

    width: int | None
    height: int | None = None
    fit: str = "fit"
    formats: tuple[str, ...] = ("image/webp",)

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The rendition's size for a picture this large, never larger than it: a crop
        box too large for the picture shrinks, keeping its shape."""
        if self.width is None:
            return width, height
        if self.fit == "crop":
            box_w, box_h = self.width, self.height or self.width
            shrink = min(1.0, width / box_w, height / box_h)
            return max(1, round(box_w * shrink)), max(1, round(box_h * shrink))
        scale = min(1.0, self.width / width, self.height / height if self.height else 1.0)
        return max(1, round(width * scale)), max(1, round(height * scale))

    @property
    def name(self) -> str:
        """Part of the rendition's key: changes whenever what it makes changes."""
        if self.width is None:
            return "full"
        if self.fit == "crop":
            return f"c{self.width}x{self.height or self.width}"
        return f"w{self.width}" + (f"h{self.height}" if self.height else "")


def renditions_served(specs: tuple[RenditionSpec, ...], served_type: str | None,
                      reencoded: bool) -> tuple[RenditionSpec, ...]:
    """The renditions a served picture gets: the profile's, and beside a re-encoded AVIF
    a full-size JPEG (not every browser shows AVIF yet)."""
    if reencoded and served_type == "image/avif":
        return (*specs, RenditionSpec(None, formats=("image/jpeg",)))
    return specs


@dataclass(frozen=True)
class PictureJob:
    """Judge one picture's pixels and, if asked, write what is served from them."""

    data: bytes
    content_type: str
    max_pixels: int
    max_frames: int
    reencode: bool = False
    renditions: tuple[RenditionSpec, ...] = ()


@dataclass(frozen=True)
class PictureFile:
    """A written picture: the served file, or one rendition of it."""

    content_type: str
    width: int
    height: int
    data: bytes
    name: str = ""


@dataclass(frozen=True)
class Refusal:
    """Why the pixels cannot be served: a reason code and what was found."""

    code: str
    detail: str


@dataclass(frozen=True)
class Rendered:
    """The outcome: a refusal, or the pixels judged sound and what was written from them.
    `metadata` holds the EXIF and XMP blocks a container keeps apart, to be checked."""

    refusal: Refusal | None = None
    served: PictureFile | None = None
    renditions: tuple[PictureFile, ...] = ()
    metadata: tuple[bytes, ...] = field(default=())
