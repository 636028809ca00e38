"""Imported by the stream harnesses before atheris starts instrumenting: the modules that work
on pixel arrays are left alone. atheris traces the comparisons of the code it instruments and
keeps the arrays compared alive (memory grew by a megabyte a page until a run died of it), and
the imaging kernels are not what those harnesses are after (fuzz_admission covers the
decoders)."""

import saoy.core.documents.analysis
import saoy.core.documents.seal
import saoy.core.documents.view
import saoy.core.identity.face
import saoy.core.identity.liveness
import saoy.core.ocr.tesseract
import saoy.core.pages.hashing
import saoy.core.pages.imaging
import saoy.core.render  # noqa: F401
