"""Personal data stays private: a whole authentication and dossier, then every log line (at
DEBUG, every logger) and every metric is searched for the citizen's number, name and birth
date, in every form they take (printed, MRZ, QR)."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

import pytest

from saoy.clients.simulator import docgen
from saoy.core.documents.text import ascii_upper
from saoy.core.identity.face import FaceEngine
from saoy.v1 import identity_pb2 as ipb
from tests.face_photos import card_bytes, face_engine, head_turn_frames

from .conftest import start_server

__all__ = ["face_engine"]


def forms(person: docgen.Person) -> list[str]:
    """Every way the citizen's number, name and birth date may be written."""
    born = person.date_of_birth
    name = person.full_name
    return [
        person.id_number,
        person.id_number[3:],  # the MRZ's document number
        name,
        name.upper(),
        ascii_upper(name),
        ascii_upper(name).replace(" ", "<"),
        born.strftime("%d/%m/%Y"),
        born.strftime("%d%m%Y"),  # the QR code's form
        born.strftime("%y%m%d"),  # the MRZ's form
        born.isoformat(),
    ]


def test_no_log_line_or_metric_carries_the_citizen_s_number_name_or_birth_date(
    tmp_path: Path, face_engine: FaceEngine, caplog: pytest.LogCaptureFixture
) -> None:
    person = docgen.random_person(3)  # the person on card_bytes' card
    back = docgen.encode(docgen.id_card_back(person, 3), "jpeg", 92)
    caplog.set_level(logging.DEBUG)
    running = start_server(tmp_path / "data")
    try:

        def capture(challenge: ipb.HeadTurnChallenge) -> list[bytes]:
            sign = 1 if challenge.direction == ipb.HEAD_TURN_LEFT else -1
            return head_turn_frames(face_engine, "obama3.jpg", [0, sign * 15, sign * 35])

        card = card_bytes(face_engine)
        with running.client(kiosk_id="kiosk-privacy") as client:
            done = client.authenticate(card, capture)
            result = client.certify([card, back], session_token=done.session_token)
        # The dossier was read: the data searched for did pass through the server.
        recognized = result.of_kind("recognized")[0].recognized.pages
        assert any(f.value == person.id_number for p in recognized for f in p.fields)
        with urllib.request.urlopen(f"{running.http}/metrics") as response:
            metrics = response.read().decode()
    finally:
        running.stop()
    lines = [r.getMessage() for r in caplog.records]
    lines += [f"{r.name} {r.pathname} {r.exc_text or ''}" for r in caplog.records]
    assert len(lines) > 10 and "saoy_" in metrics
    for form in forms(person):
        assert not [ln for ln in lines if form in ln], form
        assert form not in metrics, form
