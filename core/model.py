"""Plain value types that travel between the pipeline's stages (picklable, frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class Word:
    """One recognized word and its box in page pixels (origin top-left)."""

    text: str
    left: int
    top: int
    right: int
    bottom: int
    confidence: float  # 0-100


@dataclass(frozen=True)
class AdmittedPage:
    """A page file that passed admission: a known format, within limits, fully decodable."""

    index: int
    data: bytes  # the file exactly as received
    format: str  # "jpeg" | "png" | "tiff"
    width: int  # pixels, after EXIF orientation
    height: int
    sha256: str  # of ``data``, lowercase hex
    orientation: int = 1  # EXIF orientation tag, 1 = upright
    dpi: float | None = None  # from the file's metadata, when it says


@dataclass(frozen=True)
class OcrResult:
    """What an OCR engine read on one page."""

    words: tuple[Word, ...]
    text: str
    mean_confidence: float  # 0-100; 0 when nothing was read

    @property
    def word_count(self) -> int:
        return len(self.words)


class Outcome(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    """One named check with its outcome and a reason a person can read."""

    name: str
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class CertificationBlock:
    """What is printed on every page of a copy."""

    code: str
    url: str
    issuer: str
    issued_at: datetime
    qr: str = ""  # what the QR encodes (the URL and a signed payload); the URL alone when empty
    statement: tuple[str, ...] = ()  # the certification statement (lời chứng), line by line


@dataclass(frozen=True)
class RenderPage:
    """A page ready to be laid into the copy PDF."""

    image: bytes  # an encoded JPEG or PNG, embedded as is (full fidelity)
    format: str  # "jpeg" | "png"
    width: int  # pixels
    height: int
    dpi: float
    words: tuple[Word, ...] = field(default=())
    text_rotation: int = 0  # degrees the words run counter-clockwise on the image (0/90/180/270)


@dataclass(frozen=True)
class RenderMaterial:
    """What the copy of a dossier sent to an official needs besides its page files, kept when
    it goes to review: the words read on one page (the copy's text layer), the rotation of its
    text, and the fields recognized on it as (name, value, confidence 0-1, source)."""

    index: int
    words: tuple[Word, ...]
    rotation: int
    fields: tuple[tuple[str, str, float, str], ...] = ()
