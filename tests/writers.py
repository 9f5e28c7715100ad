"""Files shaped the way the programs people use write them, built in code.

Each builder reproduces one trait that real files carry (and that a validator
written against hand-made samples misses): the entry order Word for Mac writes,
Photoshop's print settings in a JPEG, a 12,000-object report, the SVG DOCTYPE
Illustrator and Inkscape write, a CSV saved by a spreadsheet in UTF-16, and the
hostile ones: attachments anywhere in a PDF, DDE in Office files, and so on.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable

from docx import Document
from openpyxl import Workbook
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    TextStringObject,
)
from reportlab.pdfgen import canvas

# -- PDF -------------------------------------------------------------------------------


def plain_pdf(pages: int = 1, links_per_page: int = 1) -> bytes:
    """A report as a PDF library writes it; every link is an object of its own."""
    out = io.BytesIO()
    page = canvas.Canvas(out)
    for number in range(pages):
        page.drawString(72, 720, f"Quarterly report, page {number + 1}")
        for link in range(links_per_page):
            y = 700 - (link % 60) * 10
            page.linkURL(f"https://example.com/notes/{number}/{link}", (72, y, 300, y + 8))
        page.showPage()
    page.save()
    return out.getvalue()


def long_report() -> bytes:
    """137 pages and about 12,500 objects, as a long generated report has."""
    return plain_pdf(pages=137, links_per_page=90)


def _written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _file_stream(writer: PdfWriter, payload: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(payload)
    stream[NameObject("/Type")] = NameObject("/EmbeddedFile")
    return stream


def pdf_attachment_annotation(payload: bytes, filename: str) -> bytes:
    """A file attachment annotation (the paperclip a reader shows on the page), outside
    the document's /EmbeddedFiles name tree."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain_pdf())))
    spec = DictionaryObject({
        NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): TextStringObject(filename),
        NameObject("/EF"): DictionaryObject(
            {NameObject("/F"): writer._add_object(_file_stream(writer, payload))}),
    })
    note = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"),
        NameObject("/Subtype"): NameObject("/FileAttachment"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (72, 600, 90, 620)]),
        NameObject("/FS"): writer._add_object(spec),
    })
    writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(note)])
    return _written(writer)


def pdf_orphan_embedded_file(payload: bytes) -> bytes:
    """An /EmbeddedFile stream that nothing in the document points to."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain_pdf())))
    orphan = writer._add_object(_file_stream(writer, payload))
    # Referenced only from an unused entry, so the writer keeps it: readers never reach it.
    info = writer._info.get_object() if writer._info is not None else None
    assert isinstance(info, DictionaryObject)
    info[NameObject("/PieceInfo")] = DictionaryObject({NameObject("/X"): orphan})
    return _written(writer)


def pdf_updated(*changes: Callable[[PdfWriter], object]) -> bytes:
    """A PDF saved again by appending revisions (incremental updates), one per change."""
    data = plain_pdf()
    for change in changes:
        writer = PdfWriter(io.BytesIO(data), incremental=True)
        change(writer)
        data = _written(writer)
    return data


def attach(payload: bytes, filename: str) -> Callable[[PdfWriter], object]:
    return lambda writer: writer.add_attachment(filename, payload)


def drop_attachments(writer: PdfWriter) -> None:
    """A later revision that takes the attachment out of the name tree; its bytes stay."""
    names = writer._root_object.get("/Names")
    if names is not None:
        del writer._root_object[NameObject("/Names")]
    writer._root_object[NameObject("/PageMode")] = NameObject("/UseNone")


def pdf_owner_password_only() -> bytes:
    """Protected against editing only: every reader opens it without asking."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain_pdf(pages=2))))
    writer.encrypt(user_password="", owner_password="only-the-author", algorithm="AES-128")
    return _written(writer)


def pdf_owner_password_with_javascript() -> bytes:
    """Opens without a password, and runs a script when it does."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain_pdf())))
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject(
            "app.alert('opened');")})
    writer.encrypt(user_password="", owner_password="author", algorithm="AES-128")
    return _written(writer)


def pdf_deep_nesting(depth: int = 5000) -> bytes:
    """An array nested thousands deep: a parser's recursion is the target."""
    body = b"[" * depth + b"]" * depth
    objects = [b"<< /Type /Catalog /Pages 2 0 R /X " + body + b" >>",
               b"<< /Type /Pages /Kids [] /Count 0 >>"]
    return _raw_pdf(objects)


def pdf_object_stream(hidden: bytes) -> bytes:
    """A compressed object stream holding one more dictionary, as PDF 1.5 writers pack
    small objects; nothing outside the stream shows it."""
    inner = b"4 0 " + hidden
    first = len(b"4 0 ")
    packed = zlib.compress(inner)
    stream = (b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
              % (first, len(packed)) + packed + b"\nendstream")
    return _raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                     b"<< /Type /Pages /Kids [] /Count 0 >>", stream])


def _raw_pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % at for at in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


# -- Office Open XML ----------------------------------------------------------------------

def _saved(document: object) -> bytes:
    out = io.BytesIO()
    document.save(out)  # type: ignore[attr-defined]
    return out.getvalue()


def docx_document(text: str = "Minutes of the meeting") -> bytes:
    document = Document()
    document.add_paragraph(text)
    return _saved(document)


def xlsx_workbook(formula: str | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["item", "amount"])
    sheet.append(["refund", -12.5])
    if formula is not None:
        sheet["C2"] = formula
    return _saved(book)


def reordered(package: bytes, first: list[str] | None = None, folders: bool = False,
              replace: dict[str, bytes] | None = None,
              add: dict[str, bytes] | None = None) -> bytes:
    """The same package with its entries in another order, as other writers store them:
    `first` leads (Word for Mac starts with docProps/), `folders` adds folder entries."""
    with zipfile.ZipFile(io.BytesIO(package)) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts.update(replace or {})
    parts.update(add or {})
    lead = [name for name in (first or []) if name in parts]
    order = lead + sorted(name for name in parts if name not in lead)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        if folders:
            for folder in sorted({n.rsplit("/", 1)[0] + "/" for n in order if "/" in n}):
                target.writestr(zipfile.ZipInfo(folder), b"")
        for name in order:
            target.writestr(name, parts[name])
    return out.getvalue()


def mac_word_docx() -> bytes:
    return reordered(docx_document(), first=["docProps/app.xml", "docProps/core.xml"])


def folders_first_xlsx() -> bytes:
    return reordered(xlsx_workbook(), first=["xl/", "docProps/app.xml"], folders=True)


def _part(package: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(package)) as source:
        return source.read(name)


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _paragraphs(body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<w:document {W}><w:body>{body}</w:body></w:document>").encode()


def docx_with_field(instruction_runs: list[str], part: str = "word/document.xml") -> bytes:
    """A field whose instruction is split over runs, as Word stores edited fields."""
    runs = "".join(f'<w:r><w:instrText xml:space="preserve">{text}</w:instrText></w:r>'
                   for text in instruction_runs)
    body = ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>' + runs
            + '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>1</w:t></w:r>'
            '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')
    package = docx_document()
    if part == "word/document.xml":
        return reordered(package, replace={part: _paragraphs(body)})
    header = (f'<?xml version="1.0" encoding="UTF-8"?><w:hdr {W}>{body}</w:hdr>').encode()
    return reordered(package, add={part: header})


def docx_with_simple_field(instruction: str) -> bytes:
    instruction = instruction.replace('"', "&quot;")
    body = f'<w:p><w:fldSimple w:instr="{instruction}"><w:r><w:t>x</w:t></w:r></w:fldSimple></w:p>'
    return reordered(docx_document(), replace={"word/document.xml": _paragraphs(body)})


def docx_with_relationship(kind: str, target: str, external: bool = True) -> bytes:
    """One more relationship of the main document, as linking in Word writes it."""
    package = docx_document()
    name = "word/_rels/document.xml.rels"
    rels = _part(package, name).decode()
    mode = ' TargetMode="External"' if external else ""
    extra = (f'<Relationship Id="rIdX" Type="http://schemas.openxmlformats.org/'
             f'officeDocument/2006/relationships/{kind}" Target="{target}"{mode}/>')
    return reordered(package, replace={name: rels.replace("</Relationships>",
                                                          extra + "</Relationships>").encode()})


def xlsx_with_external_link(target: str) -> bytes:
    """A workbook whose formulas read another workbook, on a share or a web server."""
    package = xlsx_workbook()
    link = (b'<?xml version="1.0" encoding="UTF-8"?><externalLink xmlns="http://schemas.'
            b'openxmlformats.org/spreadsheetml/2006/main"><externalBook xmlns:r="http://schemas'
            b'.openxmlformats.org/officeDocument/2006/relationships" r:id="rId1"/>'
            b"</externalLink>")
    link_rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
                 'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                 'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
                 f'externalLinkPath" Target="{target}" TargetMode="External"/></Relationships>'
                 ).encode()
    return reordered(package, add={"xl/externalLinks/externalLink1.xml": link,
                                   "xl/externalLinks/_rels/externalLink1.xml.rels": link_rels})


def xlsx_with_dde_link() -> bytes:
    """A DDE link stored as its own part: Excel asks the named program for the value."""
    link = (b'<?xml version="1.0" encoding="UTF-8"?><externalLink xmlns="http://schemas.'
            b'openxmlformats.org/spreadsheetml/2006/main"><ddeLink ddeService="cmd" '
            b'ddeTopic="/c calc"><ddeItems><ddeItem name="A0" advise="1"/></ddeItems>'
            b"</ddeLink></externalLink>")
    return reordered(xlsx_workbook(), add={"xl/externalLinks/externalLink1.xml": link})


# -- Images -------------------------------------------------------------------------------

PHOTOSHOP_PLIST = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple Computer//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>com.apple.print.PageFormat.PMHorizontalRes</key>
	<dict>
		<key>com.apple.print.ticket.creator</key>
		<string>com.apple.jobticket</string>
		<key>com.apple.print.ticket.itemArray</key>
		<array><dict><key>com.apple.print.PageFormat.PMHorizontalRes</key><real>72</real>
		</dict></array>
	</dict>
</dict>
</plist>
"""


def jpeg_with_app_segment(marker: int, payload: bytes) -> bytes:
    """A JPEG with one more APPn segment after SOI, where editors put their metadata."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 90, 40)).save(out, "JPEG")
    data = out.getvalue()
    segment = struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def photoshop_jpeg() -> bytes:
    """Photoshop on the Mac: its Image Resource Blocks in APP13 hold the print settings
    as an XML property list."""
    block = b"8BIM" + struct.pack(">H", 0x0421) + b"\0\0" + struct.pack(">I", len(
        PHOTOSHOP_PLIST)) + PHOTOSHOP_PLIST
    return jpeg_with_app_segment(0xED, b"Photoshop 3.0\0" + block)


def xmp_jpeg(extra: bytes = b"") -> bytes:
    xmp = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
           b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
           b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
           b'xmp:CreatorTool="Adobe Photoshop 25.0"/>' + extra + b"</rdf:RDF></x:xmpmeta>"
           b'<?xpacket end="w"?>')
    return jpeg_with_app_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + xmp)


# -- SVG ----------------------------------------------------------------------------------

SVG11_DOCTYPE = ('<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
                 '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">')
SVG10_DOCTYPE = ('<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.0//EN" '
                 '"http://www.w3.org/TR/2001/REC-SVG-20010904/DTD/svg10.dtd">')


def illustrator_svg(doctype: str = SVG11_DOCTYPE, prolog: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<!-- Generator: Adobe Illustrator 27.0.0, SVG Export Plug-In . SVG Version: 6.00 "
        "Build 0)  -->\n" + prolog + doctype + "\n"
        '<svg version="1.1" id="Layer_1" xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" x="0px" y="0px" viewBox="0 0 20 20" '
        'style="enable-background:new 0 0 20 20;" xml:space="preserve">\n'
        '<style type="text/css">.st0{fill:#E30613;}</style>\n'
        '<circle class="st0" cx="10" cy="10" r="8"/>\n</svg>\n').encode()


def inkscape_svg() -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        "<!-- Created with Inkscape (http://www.inkscape.org/) -->\n" + SVG11_DOCTYPE + "\n"
        '<svg xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:svg="http://www.w3.org/2000/svg" xmlns="http://www.w3.org/2000/svg" '
        'xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" '
        'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
        'width="20" height="20" version="1.1" inkscape:version="1.2" '
        'sodipodi:docname="logo.svg"><metadata><rdf:RDF><rdf:Description '
        'rdf:about=""><dc:format>image/svg+xml</dc:format></rdf:Description></rdf:RDF>'
        '</metadata><sodipodi:namedview pagecolor="#ffffff"/>'
        '<g inkscape:label="Layer 1" inkscape:groupmode="layer"><rect width="8" height="8" '
        'style="fill:#00aa00"/></g></svg>\n').encode()


def svg_with_prolog(prolog: str) -> bytes:
    return ('<?xml version="1.0"?>\n' + prolog + '\n<svg xmlns="http://www.w3.org/2000/svg" '
            'width="10" height="10"><rect width="4" height="4"/></svg>').encode()


# -- Text -------------------------------------------------------------------------------

SPREADSHEET_ROWS = "Name,City,Amount\r\nZoë,Zürich,12.50\r\nJosé,Málaga,-3\r\n"


def csv_as(encoding: str, rows: str = SPREADSHEET_ROWS) -> bytes:
    """The rows as a spreadsheet saves them: "utf-16" writes its byte order mark."""
    return rows.encode(encoding)


# -- Matroska and MP4 ------------------------------------------------------------------

def ebml_element(element_id: int, payload: bytes, size: int | None = None) -> bytes:
    """One EBML element, its size written in as few bytes as it takes; `size` may lie
    about the payload's length."""
    length = len(payload) if size is None else size
    width = next(n for n in range(1, 9) if length < (1 << (7 * n)) - 1)
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + \
        (1 << (7 * width) | length).to_bytes(width, "big") + payload


def matroska_with_child(child_id: int, child: bytes, child_size: int | None = None) -> bytes:
    """A small Matroska file whose Info holds one child that may overrun it."""
    header = ebml_element(0x1A45DFA3, ebml_element(0x4286, b"\x01") + ebml_element(
        0x42F7, b"\x01") + ebml_element(0x42F2, b"\x04") + ebml_element(0x42F3, b"\x08")
        + ebml_element(0x4282, b"matroska") + ebml_element(0x4287, b"\x04")
        + ebml_element(0x4285, b"\x02"))
    info = ebml_element(0x1549A966, ebml_element(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
                        + ebml_element(child_id, child, child_size))
    tracks = ebml_element(0x1654AE6B, ebml_element(0xAE, ebml_element(0xD7, b"\x01")))
    return header + ebml_element(0x18538067, info + tracks)


