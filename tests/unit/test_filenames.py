import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.filenames import MAX_FILENAME_BYTES, clean_filename, content_disposition


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\cv.pdf", "cv.pdf"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("tab\there\x00.txt", "tabhere.txt"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("  spaced   out .png ", "spaced out .png"),
        ("Cafe\u0301.txt", "Café.txt"),
        ("...", ""),
        ("/", ""),
    ],
)
def test_filenames_are_cleaned(raw: str, clean: str) -> None:
    assert clean_filename(raw) == clean


def test_long_names_keep_their_extension_within_255_bytes() -> None:
    name = clean_filename("é" * 300 + ".png")
    assert name.endswith(".png")
    assert len(name.encode()) <= MAX_FILENAME_BYTES


@given(st.text(max_size=400))
def test_no_cleaned_name_can_escape_or_hide(raw: str) -> None:
    name = clean_filename(raw)
    assert "/" not in name
    assert "\\" not in name
    assert not any(ord(c) < 32 or 0x202A <= ord(c) <= 0x202E for c in name)
    assert len(name.encode()) <= MAX_FILENAME_BYTES


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    value = content_disposition('résumé "final".pdf')
    assert value.startswith('attachment; filename="')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf" in value
    value.encode("latin-1")  # a header value must be plain bytes


@given(st.text(min_size=1, max_size=100))
def test_content_disposition_never_breaks_out_of_the_header(name: str) -> None:
    value = content_disposition(name, "inline")
    assert "\r" not in value
    assert "\n" not in value
    quoted = value.split('filename="', 1)[1].split('"', 1)[0]
    assert ";" not in quoted
    value.encode("ascii")
