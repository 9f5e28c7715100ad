"""Pictures for the colour and format tests: ICC profiles of the colour spaces cameras,
phones and editors write, photo-like pixels, files from real encoders, and the colour
difference a person sees (CIE76 ΔE) between what a colour-managed viewer shows of the
original and what is served."""

from __future__ import annotations

import io
import math
import random
import shutil
import struct
import subprocess
from pathlib import Path

from PIL import Image, ImageCms, ImageFilter

COLORD = Path("/usr/share/color/icc/colord")
GHOSTSCRIPT_CMYK = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")

# Primaries (x, y) of red, green and blue, the white point, and the tone curve.
D65 = (0.3127, 0.3290)
D50 = (0.3457, 0.3585)
SPACES = {
    "Adobe RGB": (((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), D65, 563 / 256),
    "ProPhoto RGB": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50, 1.8),
    "Display P3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65, "srgb"),
    "Wide Gamut RGB": (((0.7347, 0.2653), (0.1152, 0.8264), (0.1566, 0.0177)), D50, 2.2),
}


def icc_profile(space: str, swap_red_green: bool = False) -> bytes:
    """A matrix/TRC ICC v2 display profile of the space, as editors embed them."""
    primaries, white, curve = SPACES[space]
    if swap_red_green:
        primaries = (primaries[1], primaries[0], primaries[2])
    columns = _colorants(primaries, white)
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _desc(space + (" swapped" if swap_red_green else ""))),
        (b"cprt", b"text\0\0\0\0" + b"No copyright, use freely\0"),
        (b"wtpt", _xyz(_xyz_of(D50))),
        (b"rXYZ", _xyz(columns[0])), (b"gXYZ", _xyz(columns[1])), (b"bXYZ", _xyz(columns[2])),
    ]
    trc = _curve(curve)
    tags += [(b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += struct.pack(">4sII", signature, offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s12s4s4sII4s8sI12s4s", size, b"lcms", 0x02100000,
                         b"mntr", b"RGB ", b"XYZ ", b"\0" * 12, b"acsp", b"APPL", 0, 0,
                         b"\0" * 4, b"\0" * 8, 0, _s15(_xyz_of(D50)), b"\0" * 4)
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


def colord_profile(name: str) -> bytes | None:
    """A profile Debian's colord ships (AdobeRGB1998, ProPhotoRGB, ...), when installed."""
    path = COLORD / f"{name}.icc"
    return path.read_bytes() if path.exists() else None


def _xyz_of(xy: tuple[float, float]) -> tuple[float, float, float]:
    x, y = xy
    return (x / y, 1.0, (1 - x - y) / y)


def _colorants(primaries: tuple[tuple[float, float], ...], white: tuple[float, float]
               ) -> list[tuple[float, float, float]]:
    """The XYZ of full red, green and blue, adapted to D50 (Bradford), as ICC wants."""
    xyz = [_xyz_of(p) for p in primaries]
    matrix = [[xyz[c][r] for c in range(3)] for r in range(3)]
    scale = _solve(matrix, _xyz_of(white))
    columns = [tuple(xyz[c][r] * scale[c] for r in range(3)) for c in range(3)]
    adapt = _bradford(_xyz_of(white), _xyz_of(D50))
    return [tuple(sum(adapt[r][k] * col[k] for k in range(3)) for r in range(3))  # type: ignore[misc]
            for col in columns]


_BRADFORD = [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]


def _bradford(source: tuple[float, ...], target: tuple[float, ...]) -> list[list[float]]:
    cone_s = [sum(_BRADFORD[r][k] * source[k] for k in range(3)) for r in range(3)]
    cone_t = [sum(_BRADFORD[r][k] * target[k] for k in range(3)) for r in range(3)]
    inverse = _inverse(_BRADFORD)
    scaled = [[_BRADFORD[r][c] * cone_t[r] / cone_s[r] for c in range(3)] for r in range(3)]
    return [[sum(inverse[r][k] * scaled[k][c] for k in range(3)) for c in range(3)]
            for r in range(3)]


def _inverse(m: list[list[float]]) -> list[list[float]]:
    columns = [_solve(m, tuple(1.0 if r == c else 0.0 for r in range(3))) for c in range(3)]
    return [[columns[c][r] for c in range(3)] for r in range(3)]


def _solve(m: list[list[float]], v: tuple[float, ...]) -> list[float]:
    def det(a: list[list[float]]) -> float:
        return (a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
                - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]))
    whole = det(m)
    return [det([[v[r] if c == k else m[r][c] for c in range(3)] for r in range(3)]) / whole
            for k in range(3)]


def _s15(values: tuple[float, ...]) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _xyz(values: tuple[float, ...]) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(values)


def _desc(text: str) -> bytes:
    ascii_text = text.encode() + b"\0"
    return (b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text
            + b"\0" * 8 + b"\0" * 3 + b"\0" * 67)


def _curve(curve: float | str) -> bytes:
    if isinstance(curve, float):
        return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(curve * 256))
    table = [_srgb_to_linear(i / 1023) for i in range(1024)]
    return b"curv\0\0\0\0" + struct.pack(">I", 1024) + b"".join(
        struct.pack(">H", round(v * 65535)) for v in table)


def _srgb_to_linear(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def photo(width: int = 96, height: int = 64, seed: int = 7, mode: str = "RGB") -> Image.Image:
    """Smooth, saturated, photo-like pixels: gradients through strong colours, a little
    grain, softened as a lens would (no hard edges for a lossy codec to smear)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    assert pixels is not None
    for y in range(height):
        for x in range(width):
            r = 128 + 120 * math.sin(x / width * 3.1 + seed)
            g = 128 + 120 * math.sin(y / height * 2.7 + seed / 2)
            b = 128 + 120 * math.cos((x + y) / (width + height) * 3.3)
            pixels[x, y] = tuple(int(min(255, max(0, c + rng.uniform(-6, 6))))
                                 for c in (r, g, b))
    return image.filter(ImageFilter.GaussianBlur(1.2)).convert(mode)


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


# ---- what a person sees -------------------------------------------------------------

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def as_viewer_shows(data: bytes) -> Image.Image:
    """The file as a colour-managed viewer renders it: decoded, composited on white,
    through its embedded profile (or as sRGB without one), to 8-bit sRGB by LittleCMS."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        icc = image.info.get("icc_profile")
        picture = _composited(image)
    if icc:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            picture, profile, _SRGB, outputMode="RGB",
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
        assert converted is not None
        return converted
    return picture.convert("RGB")


def _composited(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":  # a viewer shows 16 bits as their 8 best
        wide = image.convert("I")
        grey = wide.point([v // 257 for v in range(65536)], "L")
        if "transparency" in image.info:
            clear = [255] * 65536
            clear[image.info["transparency"]] = 0
            grey.putalpha(wide.point(clear, "L"))
        image = grey
    if mode == "CMYK" or (mode == "L" and "transparency" not in image.info):
        return image
    if image.mode in ("LA", "RGBA", "PA", "P") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", image.size, "white")
        flat.alpha_composite(rgba)
        return flat.convert("RGB" if image.mode not in ("L", "LA") else "L")
    return image


def mean_delta_e(reference: Image.Image, served: Image.Image) -> float:
    """Mean CIE76 ΔE between two sRGB renderings of the same size (about 2 to 3 is
    visible side by side)."""
    assert reference.size == served.size, (reference.size, served.size)
    a = reference.convert("RGB").tobytes()
    b = served.convert("RGB").tobytes()
    total = 0.0
    for i in range(0, len(a), 3):
        total += math.dist(_lab(a[i:i + 3]), _lab(b[i:i + 3]))
    return total / (len(a) // 3)


def _lab(rgb: bytes) -> tuple[float, float, float]:
    r, g, b = (_srgb_to_linear(c / 255) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116
    return (116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z)))


# ---- real encoders ------------------------------------------------------------------

def encoder(name: str) -> str | None:
    return shutil.which(name)


def heif_enc(source: bytes, suffix: str, tmp: Path, *args: str) -> bytes:
    """libheif's heif-enc (Debian's libheif-examples) on a JPEG or PNG."""
    given, made = tmp / f"in{suffix}", tmp / "out.heic"
    given.write_bytes(source)
    program = encoder("heif-enc") or "heif-enc"
    subprocess.run([program, *args, "-o", str(made), str(given)], check=True,
                   capture_output=True, timeout=120)
    return made.read_bytes()


def phone_heic(picture: Image.Image, orientation: int, icc: bytes) -> bytes:
    """A HEIC as a phone stores it, written by libheif with x265 (the wheel's): the
    pixels as the sensor read them, an `irot` box and the same EXIF orientation to turn
    them upright, a Display P3 profile, and the maker in the EXIF."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    picture.save(out, "HEIF", quality=90, exif=exif.tobytes(), icc_profile=icc)
    return out.getvalue()


def avifenc(source: bytes, suffix: str, tmp: Path, *args: str) -> bytes:
    """libavif's avifenc (Debian's libavif-bin) on a JPEG or PNG."""
    given, made = tmp / f"in{suffix}", tmp / "out.avif"
    given.write_bytes(source)
    program = encoder("avifenc") or "avifenc"
    subprocess.run([program, *args, str(given), str(made)], check=True,
                   capture_output=True, timeout=120)
    return made.read_bytes()
