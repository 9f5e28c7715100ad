"""Pictures: their pixels judged and, from those pixels alone, the files served: the
picture re-encoded in sRGB and the renditions a profile asks for, in a contained
child process."""

from broker.domain.pictures.contained import (
    DEFAULT_LIMITS,
    PictureLimits,
    PicturesUnavailable,
    rendered,
)
from broker.domain.pictures.model import (
    DECODERS,
    RENDITION_FORMATS,
    SERVED_AS,
    PictureFile,
    PictureJob,
    Refusal,
    Rendered,
    RenditionSpec,
)

__all__ = [
    "DECODERS",
    "DEFAULT_LIMITS",
    "RENDITION_FORMATS",
    "SERVED_AS",
    "PictureFile",
    "PictureJob",
    "PictureLimits",
    "PicturesUnavailable",
    "Refusal",
    "Rendered",
    "RenditionSpec",
    "rendered",
]
