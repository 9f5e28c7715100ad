#!/usr/bin/env bash
# System packages the product and its test suites need, installed with apt-get
# when missing and we are root. Outside CI only libmagic is required; the suites
# that need the rest (ClamAV, Ceph RGW, Chromium, PostgreSQL,
# Redis, ffmpeg for real videos, HEIC and AVIF encoders) skip, and say so loudly.
# Under CI=true everything is installed.
set -euo pipefail

missing=()
ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1' || missing+=(libmagic1)
if [ "${CI:-}" = "true" ]; then
  [ -x /usr/sbin/clamd ] || missing+=(clamav clamav-daemon)
  command -v radosgw >/dev/null && command -v ceph-osd >/dev/null \
    || missing+=(radosgw ceph-mon ceph-osd)
  [ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  # Pictures: HEIC and AVIF from Debian's real encoders, editors' ICC profiles, and a
  # press CMYK profile, for the colour and format tests.
  command -v heif-enc >/dev/null || missing+=(libheif-examples)
  command -v avifenc >/dev/null || missing+=(libavif-bin)
  [ -f /usr/share/color/icc/colord/AdobeRGB1998.icc ] || missing+=(colord-data)
  [ -f /usr/share/color/icc/ghostscript/default_cmyk.icc ] || missing+=(libgs-common)
  # Uppy, the OIDC provider and the docs' JavaScript checks run on node.
  command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
fi
# The outside corpus's independent labels (make corpus; its tests under CI=true).
if [ "${CI:-}" = "true" ] || [ "${CORPUS:-}" = "true" ]; then
  for tool in qpdf:qpdf pngcheck:pngcheck jpeginfo:jpeginfo xmllint:libxml2-utils \
              webpinfo:webp ffprobe:ffmpeg; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
  done
  [ -x /usr/sbin/clamd ] || missing+=(clamav-daemon)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
