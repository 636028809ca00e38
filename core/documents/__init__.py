"""Document understanding: what each page of a dossier is, what it says, and whether the
originals may be certified.

Call :func:`analyze_dossier` once per dossier with every page's upright grey image, its
colour image (for the seal) and the page OCR::

    reader = DocumentReader()                     # once, at start-up
    analysis = analyze_dossier(
        [(gray, rgb, ocr_result), ...], today=date.today(), reader=reader
    )
    analysis.pages[i].document_type, analysis.pages[i].field_map(), analysis.checks
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from saoy.core.documents.analysis import PageAnalysis, PageInput, analyze_page
from saoy.core.documents.card import reconcile
from saoy.core.documents.classify import (
    BIRTH_CERTIFICATE,
    CCCD_BACK,
    CCCD_FRONT,
    DOCUMENT_TYPES,
    GENERIC,
)
from saoy.core.documents.fields import Field
from saoy.core.documents.reader import DocumentReader
from saoy.core.documents.rules import dossier_checks
from saoy.core.documents.view import PageView, page_view
from saoy.core.model import CheckResult, Outcome
from saoy.core.ocr.tesseract import OcrResult

__all__ = [
    "BIRTH_CERTIFICATE",
    "CCCD_BACK",
    "CCCD_FRONT",
    "DOCUMENT_TYPES",
    "GENERIC",
    "DocumentReader",
    "DossierAnalysis",
    "Field",
    "PageAnalysis",
    "PageInput",
    "PageView",
    "analyze_dossier",
    "analyze_view",
    "judge",
    "page_view",
    "reconcile",
]


@dataclass(frozen=True)
class DossierAnalysis:
    """Every page's type and fields, and every check over the dossier."""

    pages: tuple[PageAnalysis, ...]
    checks: tuple[CheckResult, ...]

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.outcome is Outcome.FAIL)

    @property
    def warned(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.outcome is Outcome.WARN)

    @property
    def outcome(self) -> Outcome:
        """FAIL if any check failed, else WARN if any warned, else PASS."""
        if self.failed:
            return Outcome.FAIL
        return Outcome.WARN if self.warned else Outcome.PASS


def analyze_dossier(
    pages: Sequence[tuple[np.ndarray, np.ndarray | None, OcrResult]],
    today: date,
    *,
    reader: DocumentReader | None = None,
) -> DossierAnalysis:
    """Classify every page, extract its fields and run the validity rules.

    ``pages`` in dossier order: (upright grey H x W uint8, colour H' x W' x 3 uint8 RGB or
    None, the page's OCR result). ``reader`` adds a second MRZ reading and orientation
    detection; without it the MRZ is taken from the page OCR alone and turned pages read as
    pages without text. ``today`` decides expiry.
    """
    return judge(
        [
            analyze_page(i, gray, rgb, result, today, reader)
            for i, (gray, rgb, result) in enumerate(pages)
        ],
        today,
    )


def analyze_view(
    index: int,
    view: PageView,
    result: OcrResult,
    today: date,
    reader: DocumentReader | None = None,
) -> PageAnalysis:
    """:func:`analyze_page` of a page view (see :func:`page_view`) and its OCR, with the
    seals and QR codes the view found."""
    return analyze_page(
        index, view.gray, view.rgb, result, today, reader, seals=view.seals, qr_codes=view.qr_codes
    )


def judge(pages: Sequence[PageAnalysis], today: date) -> DossierAnalysis:
    """The dossier's analysis from its analysed pages: each card's fields reconciled across
    its sides (see :func:`reconcile`), then the validity rules over them."""
    reconciled = reconcile(pages, today)
    return DossierAnalysis(reconciled, dossier_checks(reconciled, today))
