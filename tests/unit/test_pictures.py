"""Pictures as people took them: served in the colours a colour-managed viewer shows of
the original, from every pixel format, HEIC and AVIF from real encoders, renditions, and
decoding contained in a child process that a crash or a bomb costs, not the worker."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from broker.domain.inspection import Declared, Inspection, inspect
from broker.domain.inspection.scanner import NoScanner
from broker.domain.pictures import (
    PictureJob,
    PictureLimits,
    Rendered,
    RenditionSpec,
    rendered,
    rendering,
)
from broker.domain.pictures.colour import in_srgb
from broker.domain.pictures.rendering import render_by_pillow
from broker.domain.pictures.streaming import render_streamed
from broker.domain.profiles import load_profiles
from tests.conftest import require_system
from tests.pictures import (
    GHOSTSCRIPT_CMYK,
    SPACES,
    as_viewer_shows,
    avifenc,
    colord_profile,
    encoder,
    heif_enc,
    icc_profile,
    mean_delta_e,
    phone_heic,
    photo,
    saved,
)
from tests.samples import BytesSource

AVATAR = load_profiles().get("avatar")
LOSSLESS, LOSSY = 2.0, 3.5  # mean ΔE: below what a person sees side by side
LOSSY_FORMATS = {"JPEG": "image/jpeg", "WEBP": "image/webp"}


ENGINES = ["libvips", "pillow"]


def served_of(data: bytes, content_type: str, engine: str = "pillow") -> bytes:
    """The file the public avatar profile serves for this upload: by libvips (as large
    pictures are, whatever their size here; Pillow where libvips declines) or Pillow."""
    job = PictureJob(data, content_type, AVATAR.max_pixels, AVATAR.max_frames, reencode=True)
    outcome = (render_streamed(job, smallest=0) or render_by_pillow(job)
               if engine == "libvips" else render_by_pillow(job))
    assert outcome.refusal is None, outcome.refusal
    assert outcome.served is not None
    served = outcome.served.data
    with Image.open(io.BytesIO(served)) as image:
        assert "icc_profile" not in image.info  # the upload's profile bytes are never served
    return served


def judged(data: bytes, filename: str, content_type: str) -> Inspection:
    return inspect(BytesSource(data), AVATAR, Declared(filename, content_type, len(data)),
                   NoScanner())


# ---- colours --------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("space", sorted(SPACES))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_wide_gamut_photo_is_served_in_the_colours_its_profile_means(
        space: str, fmt: str, engine: str) -> None:
    data = saved(photo(), fmt, icc_profile=icc_profile(space), quality=95)
    reference = as_viewer_shows(data)
    served = as_viewer_shows(served_of(data, LOSSY_FORMATS.get(fmt, "image/png"), engine))
    limit = LOSSY if fmt in LOSSY_FORMATS else LOSSLESS
    assert mean_delta_e(reference, served) < limit
    ignored = mean_delta_e(reference, photo())  # what dropping the profile served before
    assert ignored > 5, f"{space}: the test's picture would not show a dropped profile"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["AdobeRGB1998", "ProPhotoRGB", "WideGamutRGB",
                                  "SwappedRedAndGreen"])
def test_profiles_as_editors_ship_them_are_honoured(name: str, engine: str) -> None:
    icc = colord_profile(name)
    require_system("colord's ICC profiles", icc is not None, "apt-get install colord-data")
    assert icc is not None
    data = saved(photo(), "PNG", icc_profile=icc)
    reference = as_viewer_shows(data)
    served = as_viewer_shows(served_of(data, "image/png", engine))
    assert mean_delta_e(reference, served) < LOSSLESS


def test_a_profile_that_swaps_channels_does_not_swap_the_served_colours() -> None:
    red = Image.new("RGB", (32, 32), (220, 40, 30))
    data = saved(red, "PNG", icc_profile=icc_profile("Display P3", swap_red_green=True))
    with Image.open(io.BytesIO(served_of(data, "image/png"))) as served:
        r, g, _b = served.convert("RGB").getpixel((5, 5))  # type: ignore[misc]
    assert g > r  # the profile says the first channel is green
    assert mean_delta_e(as_viewer_shows(data), as_viewer_shows(saved(served, "PNG"))) < 1


@pytest.mark.parametrize("engine", ENGINES)
def test_a_broken_or_mismatched_profile_is_ignored_as_browsers_ignore_it(engine: str) -> None:
    picture = photo()
    for icc in (b"not a profile at all", icc_profile("Adobe RGB")[:200]):
        data = saved(picture, "PNG", icc_profile=icc)
        with Image.open(io.BytesIO(served_of(data, "image/png", engine))) as served:
            assert mean_delta_e(picture, served) < LOSSLESS
    grey = saved(photo(mode="L"), "PNG", icc_profile=icc_profile("Adobe RGB"))  # RGB on grey
    with Image.open(io.BytesIO(served_of(grey, "image/png", engine))) as served:
        assert served.mode == "L"


def _sixteen_bit_grey(transparent: int | None = None) -> bytes:
    """A 16-bit greyscale PNG, a ramp over the whole range (as scanners and medical
    viewers write), optionally with one grey level transparent (tRNS)."""
    width, height = 64, 32
    rows = b"".join(b"\0" + b"".join(struct.pack(">H", (x * 1040 + y * 10) % 65536)
                                     for x in range(width)) for y in range(height))
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))]
    if transparent is not None:
        chunks.append((b"tRNS", struct.pack(">H", transparent)))
    chunks += [(b"IDAT", zlib.compress(rows)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body
        + struct.pack(">I", zlib.crc32(kind + body)) for kind, body in chunks)


MODES = {
    "16-bit grey": (_sixteen_bit_grey, "image/png"),
    "16-bit grey with tRNS": (lambda: _sixteen_bit_grey(transparent=1040 * 5), "image/png"),
    "grey with alpha": (lambda: saved(photo(mode="LA"), "PNG"), "image/png"),
    "grey with tRNS": (lambda: saved(photo(mode="L"), "PNG", transparency=120), "image/png"),
    "RGB with tRNS": (lambda: saved(photo(), "PNG", transparency=(128, 128, 128)),
                      "image/png"),
    "palette with transparency": (
        lambda: saved(photo().quantize(64), "PNG", transparency=3), "image/png"),
    "palette GIF with transparency": (
        lambda: saved(photo().quantize(64), "GIF", transparency=3), "image/gif"),
    "RGBA": (lambda: saved(photo(mode="RGBA"), "PNG"), "image/png"),
    "1-bit": (lambda: saved(photo(mode="1"), "PNG"), "image/png"),
    "Adobe inverted CMYK JPEG": (lambda: saved(photo(mode="CMYK"), "JPEG", quality=95),
                                 "image/jpeg"),
    "greyscale JPEG": (lambda: saved(photo(mode="L"), "JPEG", quality=95), "image/jpeg"),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", MODES)
def test_every_pixel_format_is_served_as_it_looks(name: str, engine: str) -> None:
    make, content_type = MODES[name]
    data = make()
    served = served_of(data, content_type, engine)
    limit = LOSSY if content_type == "image/jpeg" else LOSSLESS
    assert mean_delta_e(as_viewer_shows(data), as_viewer_shows(served)) < limit


def test_a_sixteen_bit_grey_ramp_keeps_its_tones() -> None:
    with Image.open(io.BytesIO(served_of(_sixteen_bit_grey(), "image/png"))) as served:
        assert served.mode == "L"
        levels = sorted({v for v in served.tobytes()})
    assert levels[0] < 10
    assert levels[-1] > 245
    assert len(levels) > 100  # the ramp's steps, not a few bands


@pytest.mark.parametrize("engine", ENGINES)
def test_cmyk_with_a_press_profile_is_converted_through_it(engine: str) -> None:
    require_system("Ghostscript's CMYK profile", GHOSTSCRIPT_CMYK.exists(),
                   "apt-get install libgs-common")
    icc = GHOSTSCRIPT_CMYK.read_bytes()
    data = saved(photo(mode="CMYK"), "JPEG", quality=95, icc_profile=icc)
    reference = as_viewer_shows(data)
    served = as_viewer_shows(served_of(data, "image/jpeg", engine))
    assert mean_delta_e(reference, served) < LOSSY
    naive = photo(mode="CMYK").convert("RGB")
    assert mean_delta_e(reference, naive) > LOSSY  # the profile mattered


def test_lab_pixels_come_out_in_srgb() -> None:
    picture = photo()
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"),
                                     ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = ImageCms.applyTransform(picture, to_lab)
    assert lab is not None
    assert lab.mode == "LAB"
    assert mean_delta_e(picture, in_srgb(lab)) < LOSSLESS


# ---- HEIC and AVIF from real encoders ---------------------------------------------------

def _needs(tool: str, package: str) -> None:
    require_system(tool, encoder(tool) is not None, f"apt-get install {package}")


def _phone_photo(orientation: int = 6) -> tuple[bytes, Image.Image]:
    """A JPEG as a phone writes it: Display P3, turned by EXIF orientation."""
    picture = photo(120, 80)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    return saved(picture, "JPEG", quality=95, icc_profile=icc_profile("Display P3"),
                 exif=exif), picture


def test_an_iphone_style_heic_is_accepted_and_served_upright_as_jpeg() -> None:
    picture = photo(120, 80)
    heic = phone_heic(picture, 6, icc_profile("Display P3"))
    assert b"irot" in heic
    assert b"PhoneMaker" in heic
    inspection = judged(heic, "IMG_0042.HEIC", "image/heic")
    assert inspection.verdict.accepted, inspection.verdict
    assert inspection.verdict.content_type == "image/heic"
    assert inspection.served.content_type == "image/jpeg"  # what every browser shows
    assert inspection.rewrite is not None
    served = b"".join(inspection.rewrite(BytesSource(heic)))
    with Image.open(io.BytesIO(served)) as image:
        assert image.format == "JPEG"
        assert image.size == (80, 120)  # upright: turned a quarter, once
        assert "exif" not in image.info
    upright = saved(picture.transpose(Image.Transpose.ROTATE_270), "PNG",
                    icc_profile=icc_profile("Display P3"))
    assert mean_delta_e(as_viewer_shows(upright), as_viewer_shows(served)) < LOSSY
    assert b"PhoneMaker" not in served


def test_an_avif_is_served_as_avif_with_a_jpeg_beside_it(tmp_path: Path) -> None:
    _needs("avifenc", "libavif-bin")
    png = saved(photo(), "PNG", icc_profile=icc_profile("Display P3"))
    avif = avifenc(png, ".png", tmp_path, "--min", "0", "--max", "10")
    inspection = judged(avif, "photo.avif", "image/avif")
    assert inspection.verdict.accepted, inspection.verdict
    assert inspection.served.content_type is None  # served as its own type
    assert inspection.rewrite is not None
    served = b"".join(inspection.rewrite(BytesSource(avif)))
    reference = as_viewer_shows(png)
    assert mean_delta_e(reference, as_viewer_shows(served)) < LOSSY
    fallback = [r for r in inspection.served.renditions if r.name == "full"]
    assert [r.content_type for r in fallback] == ["image/jpeg"]
    assert mean_delta_e(reference, as_viewer_shows(fallback[0].data)) < LOSSY


def test_a_heif_file_by_its_brands_not_only_libmagic(tmp_path: Path) -> None:
    _needs("heif-enc", "libheif-examples")
    heic = heif_enc(saved(photo(), "PNG"), ".png", tmp_path)
    as_heif = judged(heic, "photo.heif", "image/heif")  # the family's other name
    assert as_heif.verdict.accepted, as_heif.verdict
    assert judged(heic, "photo.png", "image/png").verdict.reason.code == "type_mismatch"  # type: ignore[union-attr]


def _last_box_grown(data: bytes, extra: bytes) -> bytes:
    """The file with bytes added inside its last box (media data no picture points at)."""
    position, last = 0, 0
    while position < len(data):
        last = position
        position += int.from_bytes(data[position:position + 4], "big")
    size = int.from_bytes(data[last:last + 4], "big") + len(extra)
    return data[:last] + size.to_bytes(4, "big") + data[last + 4:] + extra


HOSTILE_HEIF = {
    "a ZIP after the container": (lambda f: f + b"PK\x03\x04" + b"\0" * 26 + b"x.php<?php",
                                  "polyglot"),
    "a PHP script after the container": (lambda f: f + b"<?php system($_GET[1]);", "polyglot"),
    "a ZIP inside the media data": (lambda f: _last_box_grown(f, b"PK\x03\x04" * 20000),
                                    "polyglot"),
    "a script in the metadata": (lambda f: f.replace(b"PhoneMaker", b"<script>a1"),
                                 "polyglot"),
    "cut short": (lambda f: f[: len(f) // 2], "malformed"),
    "a box past the end": (lambda f: f[:28] + b"\x7f\xff\xff\xff" + f[32:], "malformed"),
    "no picture brand": (lambda f: f[:8] + b"qt  " + f[12:], "type_mismatch"),
}


@pytest.mark.parametrize("name", HOSTILE_HEIF)
def test_a_hostile_heic_is_refused(name: str, tmp_path: Path) -> None:
    _needs("heif-enc", "libheif-examples")
    heic = heif_enc(_phone_photo()[0], ".jpg", tmp_path)
    assert b"PhoneMaker" in heic
    change, code = HOSTILE_HEIF[name]
    verdict = judged(change(heic), "photo.heic", "image/heic").verdict
    assert verdict.reason is not None, name
    assert verdict.reason.code == code, verdict.detail


def test_a_heic_over_the_pixel_limit_is_a_bomb(tmp_path: Path) -> None:
    _needs("heif-enc", "libheif-examples")
    heic = heif_enc(saved(Image.new("RGB", (2000, 1500), "white"), "PNG"), ".png", tmp_path)
    small = AVATAR.model_copy(update={"max_pixels": 1_000_000})
    verdict = inspect(BytesSource(heic), small, Declared("big.heic", "image/heic", len(heic)),
                      NoScanner()).verdict
    assert verdict.reason is not None
    assert verdict.reason.code == "decompression_bomb"


# ---- renditions -------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_renditions_are_made_to_the_profile_never_larger_than_the_picture(engine: str) -> None:
    data = saved(photo(1200, 800), "JPEG", quality=92, icc_profile=icc_profile("Adobe RGB"))
    specs = (RenditionSpec(64, 64, "crop"), RenditionSpec(256, formats=("image/webp",
                                                                       "image/jpeg")),
             RenditionSpec(2048))
    job = PictureJob(data, "image/jpeg", 10**8, 1, renditions=specs)
    outcome = render_streamed(job, smallest=0) if engine == "libvips" else render_by_pillow(job)
    assert outcome is not None
    made = {(r.name, r.content_type): r for r in outcome.renditions}
    assert set(made) == {("c64x64", "image/webp"), ("w256", "image/webp"),
                         ("w256", "image/jpeg"), ("w2048", "image/webp")}
    assert (made["c64x64", "image/webp"].width, made["c64x64", "image/webp"].height) == (64, 64)
    assert (made["w256", "image/jpeg"].width, made["w256", "image/jpeg"].height) == (256, 171)
    assert (made["w2048", "image/webp"].width, made["w2048", "image/webp"].height) == (1200, 800)
    reference = as_viewer_shows(data).resize((256, 171), Image.Resampling.LANCZOS)
    for rendition in made.values():
        with Image.open(io.BytesIO(rendition.data)) as image:
            assert image.size == (rendition.width, rendition.height)
            assert "icc_profile" not in image.info
            assert "exif" not in image.info
    assert mean_delta_e(reference, as_viewer_shows(made["w256", "image/jpeg"].data)) < LOSSY
    assert outcome.served is None  # a private profile's renditions, the file copied as is


# ---- contained ------------------------------------------------------------------------

def _zero_png(width: int, height: int) -> bytes:
    """A PNG of black pixels that compresses to little and decodes to a lot."""
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + width * 3)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
              (b"IDAT", idat), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body
        + struct.pack(">I", zlib.crc32(kind + body)) for kind, body in chunks)


def test_a_large_picture_is_written_a_few_lines_at_a_time() -> None:
    data = _zero_png(12_000, 12_000)  # 432 MB of pixels from a file of a few hundred KB
    job = PictureJob(data, "image/png", 10**9, 1, reencode=True,
                     renditions=(RenditionSpec(256),))
    outcome = rendered(job, PictureLimits(memory=384 * 1024**2, cpu_seconds=60))
    assert outcome.refusal is None
    assert outcome.served is not None
    assert (outcome.served.width, outcome.served.height) == (12_000, 12_000)
    assert [(r.width, r.height) for r in outcome.renditions] == [(256, 256)]


@pytest.mark.parametrize(("size", "streamed"), [((640, 480), False), ((1600, 1250), True),
                                               ((20_000, 10_000), True)])
def test_only_large_pictures_start_libvips(size: tuple[int, int], streamed: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Starting libvips in a fresh child costs more than a small picture's whole work.
    asked: list[PictureJob] = []

    def streamed_and_counted(job: PictureJob) -> Rendered | None:
        asked.append(job)
        return render_streamed(job)

    monkeypatch.setattr(rendering, "render_streamed", streamed_and_counted)
    data = _zero_png(*size)
    outcome = rendering.render(PictureJob(data, "image/png", 10**9, 1))
    assert outcome.refusal is None
    assert bool(asked) is streamed


def test_a_picture_that_needs_more_memory_than_allowed_costs_only_its_child() -> None:
    turned = Image.Exif()
    turned[0x0112] = 6  # turning it needs all of its pixels at once
    data = saved(Image.new("RGB", (12_000, 12_000)), "JPEG", exif=turned, quality=50)
    job = PictureJob(data, "image/jpeg", 10**9, 1, reencode=True)
    outcome = rendered(job, PictureLimits(memory=384 * 1024**2, cpu_seconds=60))
    assert outcome.refusal is not None
    assert outcome.refusal.code == "decompression_bomb", outcome.refusal
    small = rendered(PictureJob(saved(photo(), "PNG"), "image/png", 10**6, 1, reencode=True),
                     PictureLimits())
    assert small.served is not None  # the worker goes on


def test_a_picture_that_takes_too_long_is_stopped() -> None:
    noisy = Image.effect_noise((3000, 3000), 64).convert("RGB")
    job = PictureJob(saved(noisy, "PNG", compress_level=1), "image/png", 10**8, 1,
                     reencode=True, renditions=(RenditionSpec(2900, formats=("image/avif",)),))
    started = time.monotonic()
    outcome = rendered(job, PictureLimits(cpu_seconds=1))
    assert outcome.refusal is not None
    assert outcome.refusal.code == "decompression_bomb"
    assert "1 s of CPU" in outcome.refusal.detail
    assert time.monotonic() - started < 30


def test_a_decoder_crash_costs_only_its_child() -> None:
    from broker.domain.pictures import forkserver

    noisy = Image.effect_noise((2500, 2500), 64).convert("RGB")
    job = PictureJob(saved(noisy, "PNG", compress_level=1), "image/png", 10**8, 1,
                     reencode=True, renditions=(RenditionSpec(2400, formats=("image/avif",)),))
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(r=rendered(job, PictureLimits())))
    worker.start()
    server = forkserver.server_pid()
    deadline = time.monotonic() + 60
    children: list[int] = []
    while not children and time.monotonic() < deadline:
        time.sleep(0.05)
        server = server or forkserver.server_pid()
        children = [int(pid) for pid in os.listdir("/proc") if pid.isdigit()
                    and _parent(int(pid)) == server] if server else []
    assert children, "no child process did the work"
    time.sleep(1)  # it has the job and is at work on it
    os.kill(children[0], 11)  # as a decoder's bad write would end it: SIGSEGV
    worker.join(60)
    outcome = result["r"]
    assert outcome.refusal is not None  # type: ignore[attr-defined]
    assert outcome.refusal.code == "malformed"  # type: ignore[attr-defined]
    assert "crashed (SIGSEGV)" in outcome.refusal.detail  # type: ignore[attr-defined]
    again = rendered(PictureJob(saved(photo(), "PNG"), "image/png", 10**6, 1, reencode=True),
                     PictureLimits())
    assert again.served is not None


def test_a_fork_server_that_cannot_start_is_an_outage_not_the_pictures_fault(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.domain.pictures import contained, forkserver

    job = PictureJob(saved(photo(), "PNG"), "image/png", 10**6, 1, reencode=True)
    forkserver.stop()
    monkeypatch.setattr(contained, "_WARM", "tests.broken_preload")
    try:
        with pytest.raises(contained.PicturesUnavailable, match="fork server"):
            rendered(job, PictureLimits())
    finally:
        forkserver.stop()
        monkeypatch.undo()
    assert rendered(job, PictureLimits()).served is not None  # served again once it starts


def test_a_childs_answer_is_read_as_data_and_never_run() -> None:
    """What comes back from a child that a hostile picture may have taken over is JSON
    and bytes, every field checked: a pickle, or a header that lies, is a refusal."""
    import pickle

    from broker.domain.pictures import PictureFile, Refusal, Rendered
    from broker.domain.pictures.wire import UnreadableAnswer, decode_rendered, encode_rendered

    full = Rendered(served=PictureFile("image/jpeg", 30, 20, b"\xff\xd8jpeg"),
                    renditions=(PictureFile("image/webp", 8, 8, b"RIFFwebp", "c8x8"),),
                    metadata=(b"Exif\0\0", b"<x:xmpmeta/>"))
    refused = Rendered(Refusal("decompression_bomb", "too many pixels: 1e9"))
    for outcome in (full, refused, Rendered()):
        assert decode_rendered(encode_rendered(outcome)) == outcome
    answer = encode_rendered(full)
    lies = [pickle.dumps(full), answer[:-1], answer + b"x", b"",
            answer.replace(b'"image/jpeg", 30', b'"image/jpeg", -30'),
            answer.replace(b'"image/jpeg", 30', b'"image/jpeg", "30"')]
    for lie in lies:
        with pytest.raises(UnreadableAnswer):
            decode_rendered(lie)


def test_the_fork_server_ends_with_the_worker_that_started_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import io\n"
        "from PIL import Image\n"
        "from broker.domain.pictures import PictureJob, PictureLimits, rendered\n"
        "from broker.domain.pictures import forkserver\n"
        "png = io.BytesIO(); Image.new('RGB', (8, 8)).save(png, 'PNG')\n"
        "rendered(PictureJob(png.getvalue(), 'image/png', 10**6, 1), PictureLimits())\n"
        "print(forkserver.server_pid(), flush=True)\n"
        "import os; os._exit(0)\n")  # no clean-up of its own: as a worker killed
    here = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=here, check=True,
                          env=os.environ | {"PYTHONPATH": here})
    server = int(done.stdout)
    deadline = time.monotonic() + 30
    while _running(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(server)


def test_pictures_are_judged_however_deep_the_temporary_folder(tmp_path: Path) -> None:
    """A socket's path holds about a hundred bytes: a long TMPDIR (a project's own
    folder, deep in a home directory) must not stop every picture."""
    import subprocess
    import sys

    deep = tmp_path / ("a-long-folder-name-" * 8)
    deep.mkdir()
    script = (
        "import io\n"
        "from PIL import Image\n"
        "from broker.domain.pictures import PictureJob, PictureLimits, rendered\n"
        "png = io.BytesIO(); Image.new('RGB', (8, 8)).save(png, 'PNG')\n"
        "job = PictureJob(png.getvalue(), 'image/png', 10**6, 1, reencode=True)\n"
        "print('served' if rendered(job, PictureLimits()).served else 'refused')\n")
    here = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=here, check=False,
                          env=os.environ | {"PYTHONPATH": here, "TMPDIR": str(deep)})
    assert done.stdout.strip() == "served", done.stderr


UNGUARDED_SCRIPT = """
import io, os, pathlib
from PIL import Image
marker = pathlib.Path(os.environ["MARKER"])
runs = marker.read_text().count("ran") if marker.exists() else 0
with marker.open("a") as out:
    out.write("ran\\n")
if runs == 0:  # without this, a child running the script again would judge again
    from broker.domain.pictures import PictureJob, PictureLimits, rendered
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(png, "PNG")
    job = PictureJob(png.getvalue(), "image/png", 10**6, 1, reencode=True)
    print("served" if rendered(job, PictureLimits()).served else "refused")
"""


def test_a_script_without_a_main_guard_runs_once_however_many_pictures_it_judges(
        tmp_path: Path) -> None:
    """A script of the app's own judging uploads in its process: multiprocessing's
    children run the program's main module again; the pictures' children must not."""
    import subprocess
    import sys

    script = tmp_path / "judge_here.py"
    script.write_text(UNGUARDED_SCRIPT)
    marker = tmp_path / "runs.txt"
    here = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=here, check=False,
                          env=os.environ | {"MARKER": str(marker), "PYTHONPATH": here})
    assert done.stdout.strip() == "served", done.stderr
    assert marker.read_text().count("ran") == 1


def _running(pid: int) -> bool:
    """Whether a process exists and has not ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="latin-1") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="latin-1") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
