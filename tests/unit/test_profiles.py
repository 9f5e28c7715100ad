from pathlib import Path

import pytest

from broker.common.errors import InvalidRequest
from broker.domain.profiles import ProfileError, Profiles, load_profiles, parse_size

MIB = 1024 * 1024


def test_shipped_profiles_match_the_documented_defaults() -> None:
    profiles = load_profiles()
    avatar, document = profiles.get("avatar"), profiles.get("document")
    assert avatar.visibility == "public"
    assert avatar.max_size == 5 * MIB
    assert set(avatar.types) == {"image/png", "image/jpeg", "image/webp", "image/gif",
                                 "image/heic", "image/heif", "image/avif"}
    assert [r.width for r in avatar.renditions] == [64, 256, 1024]
    assert document.visibility == "private"
    assert document.max_size == 25 * MIB
    assert "application/pdf" in document.types
    assert document.types["text/csv"] == ("csv",)


@pytest.mark.parametrize(
    ("filename", "content_type", "size", "code"),
    [
        ("me.png", "image/svg+xml", 10, "type_not_allowed"),
        ("me.jpg", "image/png", 10, "extension_not_allowed"),
        ("me", "image/png", 10, "extension_not_allowed"),
        ("me.png", "image/png", 50 * MIB, "too_large"),
        ("me.png", "image/png", 0, "empty"),
    ],
)
def test_avatar_refuses_what_it_does_not_accept(
    filename: str, content_type: str, size: int, code: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        load_profiles().get("avatar").check_declared(filename, content_type, size)
    assert refused.value.code == code


def test_type_parameters_and_case_do_not_matter() -> None:
    load_profiles().get("avatar").check_declared("ME.PNG", "Image/PNG; charset=binary", 10)


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(InvalidRequest) as refused:
        load_profiles().get("banner")
    assert refused.value.code == "unknown_profile"
    assert "avatar" in refused.value.detail


def test_a_deployment_supplies_its_own_profiles(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[sheet]\nvisibility = "private"\nmax_size = "2 MB"\n'
                    '[sheet.types]\n"text/csv" = [".CSV"]\n')
    profiles = load_profiles(path)
    assert profiles.get("sheet").max_size == 2_000_000
    assert profiles.get("sheet").types == {"text/csv": ("csv",)}


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("[a\nvisibility = 'public'", "not valid TOML"),
        ("[a]\nvisibility = 'world'\nmax_size = 1\n[a.types]\n'x/y' = ['y']", "visibility"),
        ("[a]\nvisibility = 'public'\nmax_size = 'lots'\n[a.types]\n'x/y' = ['y']", "lots"),
        ("[a]\nvisibility = 'public'\nmax_size = 1\ncolour = 1\n[a.types]\n'x/y' = ['y']",
         "colour"),
        ("[a]\nvisibility = 'public'\nmax_size = 1\n[a.types]", "at least one type"),
        ("", "no upload profiles"),
    ],
)
def test_a_broken_profiles_file_is_refused_with_its_fault(text: str, fault: str) -> None:
    with pytest.raises(ProfileError, match=fault):
        Profiles.from_toml(text, "profiles.toml")


def test_a_missing_profiles_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nope\.toml"):
        load_profiles(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("value", "size"),
    [(123, 123), ("5 MiB", 5 * MIB), ("25MB", 25_000_000), ("1.5 KiB", 1536), ("7", 7)],
)
def test_sizes_read_as_people_write_them(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(("size", "says"), [
    (50 * 1024 * 1024, "accepts files from 1 byte to 5 MiB; this one is 50 MiB."),
    (5 * 1024 * 1024 + 1, "accepts files from 1 byte to 5 MiB; this one is 5242881 bytes."),
])
def test_size_refusals_speak_in_human_units(size: int, says: str) -> None:
    from broker.common.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        load_profiles().get("avatar").check_size(size)
    assert refused.value.detail == f"'avatar' {says}"
