"""Addresses as read, put right against the official list of administrative units.

OCR gets the letters of a place name right far more often than its tone and vowel marks
("Ninh Kiêu" for "Ninh Kiều", "Nghỉ Lộc" for "Nghi Lộc"). The country's provinces, districts
and wards — before the 2025 reorganisation (cards issued earlier keep their addresses) and
after it — come from the PyPI package ``vietnamadminunits`` (its data files only; MIT). A part
of an address whose letters name exactly one unit where it stands (the wards of its district,
the districts of its province) is written as that unit is officially spelt; a part that names
none, or several that differ only in their marks, is left as read.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from saoy.core.documents.provinces import PROVINCES, UNIT_WORDS
from saoy.core.documents.text import fold
from saoy.core.packages import MissingPackageData, installed_file

GAZETTEER_PACKAGE = "vietnamadminunits"
_UNITS = {fold(u): u for u in UNIT_WORDS}
WARD_TYPES = ("Phường", "Xã", "Thị trấn")
DISTRICT_TYPES = ("Quận", "Huyện", "Thị xã")
Names = dict[str, set[str]]  # folded name -> the official spellings that fold to it


@dataclass
class Gazetteer:
    """Unit names by where they stand; every name is the unit's name without its type word
    ("Ninh Kiều", not "Quận Ninh Kiều")."""

    provinces: Names = field(default_factory=lambda: defaultdict(set))
    districts: dict[str, Names] = field(default_factory=lambda: defaultdict(_names))
    wards: dict[tuple[str, str], Names] = field(default_factory=lambda: defaultdict(_names))
    province_wards: dict[str, Names] = field(default_factory=lambda: defaultdict(_names))
    anywhere: Names = field(default_factory=lambda: defaultdict(set))

    def add(self, province: str, district: str | None = None, ward: str | None = None) -> None:
        """One unit and where it stands (a ward without a district: under its province)."""
        p = fold(province)
        self.provinces[p].add(province)
        self.anywhere[p].add(province)
        if district:
            self.districts[p][fold(district)].add(district)
            self.anywhere[fold(district)].add(district)
        if ward:
            if district:
                self.wards[(p, fold(district))][fold(ward)].add(ward)
            self.province_wards[p][fold(ward)].add(ward)
            self.anywhere[fold(ward)].add(ward)


def _names() -> Names:
    return defaultdict(set)


def _load(name: str) -> dict[str, Any]:
    path = installed_file(GAZETTEER_PACKAGE, f"vietnamadminunits/data/{name}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _text(value: object) -> str | None:
    """A name from the data, without the qualifier that tells namesakes apart there ("Yên
    Viên (Thị trấn)"); None where a record has none (NaN, null, empty)."""
    if not isinstance(value, str):
        return None
    name = re.sub(r"\s*\([^)]*\)\s*$", "", value).strip()
    return name or None


def _entries(tables: Iterable[dict[str, Any]]) -> Iterable[tuple[str, dict[str, Any]]]:
    for table in tables:
        yield from table.items()


@cache
def gazetteer() -> Gazetteer | None:
    """The official list of units, loaded once; None when its package is not installed
    (addresses are then left as read, but for the province names saoy ships)."""
    g = Gazetteer()
    for name in PROVINCES.values():
        g.add(name)
    try:
        legacy = _load("parser_legacy.json")
        current = _load("parser_from_2025.json")
    except MissingPackageData:
        return None
    for data in (legacy, current):
        provinces = {k: v["provinceShort"] for k, v in data["DICT_PROVINCE"].items()}
        for short in provinces.values():
            g.add(short)
        districts: dict[tuple[str, str], str] = {}
        for pkey, units in data.get("DICT_PROVINCE_DISTRICT", {}).items():
            for dkey, unit in units.items():
                districts[(pkey, dkey)] = unit["districtShort"]
                g.add(provinces[pkey], unit["districtShort"])
        ward_tables = [v for k, v in data.items() if k.startswith("DICT_PROVINCE_") and "WARD" in k]
        for pkey, below in _entries(ward_tables):
            for key, value in below.items():
                if "wardShort" in value:  # a ward right under its province (2025)
                    g.add(provinces[pkey], None, _text(value["wardShort"]))
                    continue
                district = districts.get((pkey, key))
                for ward in value.values():
                    g.add(provinces[pkey], district, _text(ward.get("wardShort")))
    return g


def _spelt(names: Names | None, name: str) -> str | None:
    """The official spelling of ``name`` among ``names``: the one its letters name, or
    ``name`` itself when it is one of several spelt alike; None when it names none."""
    if not names:
        return None
    found = names.get(fold(name))
    if not found:
        return None
    if len(found) == 1:
        return next(iter(found))
    return name if name in found else None


def _split(part: str) -> tuple[str, str]:
    """(type word as officially spelt, or "", the rest) of one part of an address."""
    words = part.split()
    for n in (2, 1):  # two-word types first ("Thành phố" before "Xã")
        if len(words) > n and fold(" ".join(words[:n])) in _UNITS:
            return _UNITS[fold(" ".join(words[:n]))], " ".join(words[n:])
    return "", part


def normalize_place(text: str) -> str:
    """An address as read, put right where the official list tells: each part's type word
    ("Thanh phố" → "Thành phố"), then from the province (its last part) down, each unit's
    name as officially spelt. Parts before the smallest unit found (a house, a street, a
    village) are left as read."""
    raw = [p.strip() for p in text.split(",")]
    parts = [_split(p) for p in raw]
    g = gazetteer()
    out = [f"{t} {n}".strip() for t, n in parts]
    if len(parts) < 2 or g is None:
        return ", ".join(out)
    kind, name = parts[-1]
    province = _spelt(g.provinces, name)
    if province is None and not kind and fold(name).startswith("thanhpho"):
        kind, name = "Thành phố", name[len("Thành phố") :].strip() or name
        province = _spelt(g.provinces, name)
    if province is not None:
        out[-1] = f"{kind} {province}".strip()
    p = fold(province) if province else None
    district: str | None = None
    for i in range(len(parts) - 2, -1, -1):
        kind, name = parts[i]
        if p is not None and kind and _unit_of(g, p, district, raw[i]):
            kind, name = "", raw[i]  # a name that begins like a type word ("Quan Hoa")
            out[i] = raw[i]
        found = None
        if p is not None and district is None and kind not in WARD_TYPES:
            found = district = _spelt(g.districts.get(p), name)
        if found is None and p is not None and kind not in DISTRICT_TYPES:
            in_district = g.wards.get((p, fold(district))) if district else None
            found = _spelt(in_district, name) or _spelt(g.province_wards.get(p), name)
            if found is not None:
                out[i] = f"{kind} {found}".strip()
                break  # a ward: what comes before it is a street or a village
        if found is None and kind and p is None:
            # No province to stand in: only a name no other unit shares is taken. Within a
            # known province a name the list does not hold there is left as read (the list
            # may lack a unit; a namesake elsewhere is not this one).
            found = _spelt(g.anywhere, name)
        if found is not None:
            out[i] = f"{kind} {found}".strip()
    return ", ".join(out)


def _unit_of(g: Gazetteer, province: str, district: str | None, name: str) -> bool:
    """``name`` whole, without a type word, is a district of ``province`` or a ward there
    (of ``district`` when it is known)."""
    n = fold(name)
    if district is None and n in g.districts.get(province, {}):
        return True
    wards = g.wards.get((province, fold(district))) if district else g.province_wards.get(province)
    return n in (wards or {})


def confirmed_place(text: str) -> bool:
    """Whether an address names, from its last part up, a province and at least one unit
    within it exactly as the official list has them (letters; marks aside), every part with a
    unit's type word among them a unit of its province (and district): read this way, letter
    for letter, it was read right even where the reader was unsure of its words. Parts before
    the ward (a house, a street, a village) are not judged."""
    g = gazetteer()
    raw = [p.strip() for p in text.split(",")]
    parts = [_split(p) for p in raw]
    if g is None or len(parts) < 2:
        return False
    p = fold(parts[-1][1])
    if p not in g.provinces:
        return False
    district: str | None = None
    units = 0
    for whole, (kind, name) in reversed(list(zip(raw, parts, strict=True))[:-1]):
        if kind and _unit_of(g, p, district, whole):
            kind, name = "", whole
        n = fold(name)
        if district is None and kind not in WARD_TYPES and n in g.districts.get(p, {}):
            district, units = n, units + 1
            continue
        wards = g.wards.get((p, district), {}) if district else g.province_wards.get(p, {})
        if kind not in DISTRICT_TYPES and n in wards:
            return True  # a ward: what comes before it is a street or a village
        if kind:
            return False  # a unit of this province the list does not hold here
        break
    return units > 0
