"""Pictures: judging, re-encoding and three renditions (64x64 and 256x256 cut square,
1024 wide, WebP) per photo, as the avatar profile does, for a 12-megapixel JPEG, a
12-megapixel HEIC and a 24-megapixel PNG (and a 48-megapixel JPEG for how memory grows),
side by side: the product (libvips where it streams, Pillow for the rest), the
Pillow-only path, and sharp (npm, libvips) doing the same work on the same files.

Each run is a fresh process on one core (libvips and sharp told to use one thread):
wall time, megapixels a CPU-second, and peak memory grown by the work.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.npm import npm_available, npm_install

SHARP_VERSION = "0.34.5"
RUNS = 3
INPUTS = [  # name, file, type, width, height
    ("12 MP JPEG", "12mp.jpg", "image/jpeg", 4000, 3000),
    ("12 MP HEIC", "12mp.heic", "image/heic", 4000, 3000),
    ("24 MP PNG", "24mp.png", "image/png", 6000, 4000),
    ("48 MP JPEG", "48mp.jpg", "image/jpeg", 8000, 6000),
]
ENGINES = ("product", "pillow", "sharp")

# The work in sharp: the same file re-encoded upright in sRGB, and the same renditions.
SHARP_SCRIPT = r"""
const sharp = require(process.env.SHARP_DIR + "/node_modules/sharp");
const fs = require("fs");
sharp.concurrency(1); sharp.cache(false);
const [path, served] = process.argv.slice(1);
const peak = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))[1]);
(async () => {
  const data = fs.readFileSync(path);
  const before = peak(), cpu0 = process.cpuUsage();
  const t = process.hrtime.bigint();
  const writer = (s) => served === "png" ? s.png() : s[served]({ quality: 90 });
  await writer(sharp(data).rotate()).toBuffer();
  for (const [w, h] of [[64, 64], [256, 256], [1024, null]]) {
    await sharp(data).rotate().resize(w, h, { fit: h ? "cover" : "inside",
      withoutEnlargement: true }).webp({ quality: 82 }).toBuffer();
  }
  const ms = Number(process.hrtime.bigint() - t) / 1e6, cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ ms, cpu: (cpu.user + cpu.system) / 1e6,
    grown_mb: (peak() - before) / 1024, peak_mb: peak() / 1024 }));
})().catch((e) => { console.log(JSON.stringify({ error: String(e.message || e) })); });
"""


def make_inputs(folder: Path) -> None:
    """Photo-like pictures (gradients, texture, grain) with a Display P3 profile."""
    import pillow_heif
    from PIL import Image

    from tests.pictures import icc_profile

    pillow_heif.register_heif_opener()
    p3 = icc_profile("Display P3")

    def photo(width: int, height: int) -> Image.Image:
        red = Image.linear_gradient("L").resize((width, height))
        green = Image.radial_gradient("L").resize((width, height))
        texture = Image.effect_noise((width // 16, height // 16), 60).resize(
            (width, height), Image.Resampling.BICUBIC)
        grain = Image.effect_noise((width, height), 10).convert("RGB")
        return Image.blend(Image.merge("RGB", (red, green, texture)), grain, 0.08)

    for _name, file, _type, width, height in INPUTS:
        picture = photo(width, height)
        fmt = {"jpg": "JPEG", "heic": "HEIF", "png": "PNG"}[file.rsplit(".", 1)[1]]
        options = {"quality": 90} if fmt == "JPEG" else {"quality": 80} if fmt == "HEIF" else {}
        picture.save(folder / file, fmt, icc_profile=p3, **options)


def run_product(path: str, content_type: str, engine: str) -> dict[str, float]:
    """In a fresh process: the product's picture work, or the Pillow-only path."""
    import resource
    import time

    from broker.domain.pictures import PictureJob, RenditionSpec
    from broker.domain.pictures.forkserver import one_picture_at_a_time
    from broker.domain.pictures.rendering import render, render_by_pillow

    one_picture_at_a_time()
    data = Path(path).read_bytes()
    specs = (RenditionSpec(64, 64, "crop"), RenditionSpec(256, 256, "crop"),
             RenditionSpec(1024))
    job = PictureJob(data, content_type, 10**9, 1, reencode=True, renditions=specs)
    before, peak_before = resource.getrusage(resource.RUSAGE_SELF), _peak_kib()
    started = time.perf_counter()
    outcome = (render if engine == "product" else render_by_pillow)(job)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert outcome.refusal is None, outcome.refusal
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"ms": elapsed * 1000, "cpu": cpu, "grown_mb": (_peak_kib() - peak_before) / 1024,
            "peak_mb": _peak_kib() / 1024}


def _peak_kib() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, it does not start
    from what the parent held when it started this process)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def _one(engine: str, path: Path, content_type: str, sharp: Path | None
         ) -> dict[str, float] | str:
    if engine == "sharp":
        if sharp is None:
            return "node and npm are not installed"
        served = {"image/png": "png"}.get(content_type, "jpeg")
        reply = subprocess.run(["node", "-e", SHARP_SCRIPT, str(path), served],
                               capture_output=True, text=True, timeout=600,
                               env={"SHARP_DIR": str(sharp), "PATH": "/usr/bin:/bin"})
    else:
        reply = subprocess.run([sys.executable, "-m", "bench.pictures", engine, str(path),
                                content_type], capture_output=True, text=True, timeout=600)
    lines = reply.stdout.strip().splitlines()
    if reply.returncode or not lines:
        return f"failed: {reply.stderr.strip().splitlines()[-1:]}"
    figures = json.loads(lines[-1])
    if "error" in figures:
        error = str(figures["error"])
        if "compression format has not been built in" in error:
            return "cannot read it: its libvips has no HEVC decoder"
        return "cannot: " + error.strip().splitlines()[-1][:70]
    return figures


def bench_pictures() -> dict[tuple[str, str], dict[str, float] | str]:
    sharp = npm_install("sharp", "sharp", SHARP_VERSION) if npm_available() else None
    results: dict[tuple[str, str], dict[str, float] | str] = {}
    with tempfile.TemporaryDirectory() as folder:
        make_inputs(Path(folder))
        for name, file, content_type, width, height in INPUTS:
            for engine in ENGINES:
                runs = [_one(engine, Path(folder) / file, content_type, sharp)
                        for _ in range(RUNS)]
                good = [r for r in runs if isinstance(r, dict)]
                if not good:
                    results[(name, engine)] = str(runs[0])
                    continue
                megapixels = width * height / 1e6
                results[(name, engine)] = {
                    "ms": statistics.median(r["ms"] for r in good),
                    "mp_per_cpu_s": megapixels / statistics.median(r["cpu"] for r in good),
                    "grown_mb": statistics.median(r["grown_mb"] for r in good),
                    "peak_mb": statistics.median(r["peak_mb"] for r in good)}
    return results


def print_pictures(results: dict[tuple[str, str], dict[str, float] | str]) -> None:
    print("\npictures: judged, re-encoded upright in sRGB and three renditions (64x64,")
    print(f"256x256, 1024 wide, WebP), one core, median of {RUNS} fresh processes:")
    print(f"  {'input':<11} {'engine':<8} {'time':>9} {'MP/CPU-s':>9} {'memory':>9}"
          f" {'process':>8} {'time / sharp':>13}")
    for name, *_rest in INPUTS:
        sharp = results.get((name, "sharp"))
        for engine in ENGINES:
            r = results[(name, engine)]
            if isinstance(r, str):
                print(f"  {name:<11} {engine:<8} {r}")
                continue
            ratio = f"{r['ms'] / sharp['ms']:.2f}x" if isinstance(sharp, dict) else "—"
            print(f"  {name:<11} {engine:<8} {r['ms']:>6.0f} ms {r['mp_per_cpu_s']:>9.1f} "
                  f"{r['grown_mb']:>6.0f} MB {r['peak_mb']:>5.0f} MB {ratio:>13}")
    print("  (memory: what the work added to its process's peak; process: that peak)")
    print("  48 MP JPEG / 12 MP JPEG, memory the work added and the process's peak (the")
    print("  pixels grow 4x; flat means ~1):")
    for engine in ENGINES:
        big, small = results[("48 MP JPEG", engine)], results[("12 MP JPEG", engine)]
        if isinstance(big, dict) and isinstance(small, dict):
            print(f"    {engine:<8} {big['grown_mb'] / small['grown_mb']:.2f}x added, "
                  f"{big['peak_mb'] / small['peak_mb']:.2f}x process peak")


if __name__ == "__main__":
    if len(sys.argv) == 4:
        print(json.dumps(run_product(sys.argv[2], sys.argv[3], sys.argv[1])))
    else:
        print_pictures(bench_pictures())
