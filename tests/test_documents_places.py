"""Addresses put right against the official list of administrative units (the data files of
the PyPI package vietnamadminunits): marks OCR misread, where the letters name one unit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from saoy.core.documents import places
from saoy.core.documents.places import gazetteer, normalize_place
from saoy.core.packages import MissingPackageData


@pytest.mark.parametrize(
    ("read", "official"),
    [
        # a district's and a ward's marks, legacy (three-level) addresses
        ("An Cư, Ninh Kiêu, Cần Thơ", "An Cư, Ninh Kiều, Cần Thơ"),
        ("Xã Nghi Phong, Huyện Nghỉ Lộc, Tỉnh Nghệ An",
         "Xã Nghi Phong, Huyện Nghi Lộc, Tỉnh Nghệ An"),
        # a 2025 address: a ward right under its province; type words put right
        ("Phường Hoàn Kiêm, Thanh phố Hà Nội", "Phường Hoàn Kiếm, Thành phố Hà Nội"),
        # the province alone, a house and a street left as read
        ("Số 12 ngõ 34 phố Hàng Bạc, Phường Hàng Đào, Quận Hoàn Kiếm, Thành phố Ha Nôi",
         "Số 12 ngõ 34 phố Hàng Bạc, Phường Hàng Đào, Quận Hoàn Kiếm, Thành phố Hà Nội"),
    ],
)  # fmt: skip
def test_marks_misread_in_a_unit_s_name_are_put_right(read: str, official: str) -> None:
    assert normalize_place(read) == official


def test_what_names_no_unit_or_is_read_right_is_left_as_read() -> None:
    right = "Xóm Chùa, Xã Giai Xuân, Huyện Phong Điền, Thành phố Cần Thơ"
    assert normalize_place(right) == right
    street = "Số 27 Hùng Vưong, Phường Trường Thi, Thành phố Nam Định, Tỉnh Nam Định"
    assert normalize_place(street).startswith("Số 27 Hùng Vưong, ")  # a street: no list
    # Letters that name no unit in the province are not forced onto one.
    assert normalize_place("Xã Zzyzx, Huyện Gia Lâm, Thành phố Hà Nội").startswith("Xã Zzyzx")


def test_a_unit_whose_name_begins_like_a_type_word_keeps_its_name() -> None:
    # "Quan Hoa" is a ward of Cầu Giấy; its first word folds to "Quận".
    assert normalize_place("Quan Hoa, Cầu Giấy, Hà Nội") == "Quan Hoa, Cầu Giấy, Hà Nội"
    assert places.confirmed_place("Quan Hoa, Cầu Giấy, Hà Nội")
    # A type word read without its marks before a unit's name is still put right.
    assert normalize_place("Quan Cầu Giấy, Hà Nội") == "Quận Cầu Giấy, Hà Nội"


def test_names_spelt_alike_but_for_their_marks_are_not_guessed() -> None:
    g = gazetteer()
    assert g is not None
    # Thừa Thiên Huế has wards "Hương Vân" and "Hương Văn": a reading of either stays.
    wards = {w for ws in g.province_wards.values() for w in ws.get("huongvan", set())}
    assert {"Hương Vân", "Hương Văn"} <= wards


@pytest.fixture
def no_gazetteer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def missing(package: str, relative: str) -> None:
        raise MissingPackageData(f"{package} is not installed")

    monkeypatch.setattr(places, "installed_file", missing)
    gazetteer.cache_clear()
    yield
    gazetteer.cache_clear()


@pytest.mark.usefixtures("no_gazetteer")
def test_without_the_list_an_address_keeps_its_letters_and_type_words_are_put_right() -> None:
    assert gazetteer() is None
    assert (
        normalize_place("Phường Hoàn Kiêm, Thanh phố Hà Nội")
        == "Phường Hoàn Kiêm, Thành phố Hà Nội"
    )


def test_a_unit_the_list_lacks_in_its_province_is_not_renamed_after_a_namesake() -> None:
    # The list has no "Đông Dư" in Gia Lâm; a "Đồng Du" elsewhere must not replace it.
    read = "Xã Đông Dư, Huyện Gia Lâm, Hà Nội"
    assert normalize_place(read) == read


def test_an_address_naming_its_units_as_the_list_does_is_confirmed() -> None:
    from saoy.core.documents.places import confirmed_place

    assert confirmed_place("Xã Phù Linh, Huyện Sóc Sơn, Thành phố Hà Nội")
    assert confirmed_place("Hòa Phong, Hòa Vang, Đà Nẵng")  # no type words
    assert confirmed_place("Tổ 12, Tam Hưng, Thủy Nguyên, Hải Phòng")  # a street part first
    assert not confirmed_place("Xã Phù Linx, Huyện Sóc Sơn, Thành phố Hà Nội")  # a letter off
    assert not confirmed_place("Số 5 ngõ 3, Hà Nội")  # no unit under the province
    assert not confirmed_place("Xã Phù Linh, Huyện Sóc Sơn, Thành phố Hà Nộy")
    assert not confirmed_place("Hà Nội")


def test_a_place_read_unsurely_but_letter_for_letter_as_the_list_has_it_is_certain() -> None:
    from dataclasses import replace

    from saoy.core.documents.fields import card_fields
    from saoy.core.documents.text import group_lines

    from .test_documents_mrz import _row

    label = _row(["Quê", "quán", "/", "Place", "of", "origin:"], 400)
    value = _row(["Xã", "Phù", "Linh,", "Huyện", "Sóc", "Sơn,", "Thành", "phố", "Hà", "Nội"], 432)
    value[2] = replace(value[2], confidence=40.0)  # one word read unsurely
    read = card_fields(group_lines(label + value))["place_of_origin"]
    assert read.value == "Xã Phù Linh, Huyện Sóc Sơn, Thành phố Hà Nội"
    assert read.confidence == 0.9
    value[2] = replace(value[2], text="Linx,")  # a letter misread: no confirmation
    assert card_fields(group_lines(label + value))["place_of_origin"].confidence < 0.8
