"""The command line as a person uses it: `saoy serve`, `saoy authenticate`, `saoy certify`,
`saoy verify`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from saoy.core.identity.face import FaceEngine
from tests.face_photos import card_bytes, face_engine, head_turn_frames

from .ports import free_port

__all__ = ["face_engine"]

SAOY = [sys.executable, "-c", "from saoy.clients.cli import main; raise SystemExit(main())"]


def saoy(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SAOY, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [
                *SAOY,
                "serve",
                "--grpc-port",
                str(self.grpc_port),
                "--http-port",
                str(self.http_port),
                "--data-dir",
                str(data_dir),
                "--workers",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.process.stdout.read()  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz"):
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def terminate(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        return code, self.process.stdout.read()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = Served(tmp_path_factory.mktemp("cli-data"))
    yield running
    if running.process.poll() is None:
        running.terminate()


@pytest.fixture(scope="module")
def scans(
    tmp_path_factory: pytest.TempPathFactory, reference_dossier: list[tuple[str, bytes]]
) -> list[Path]:
    folder = tmp_path_factory.mktemp("scans")
    paths = []
    for name, data in reference_dossier[:2]:
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def citizen(tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine) -> list[str]:
    """`saoy authenticate` arguments: a card with a real photograph, and real photographs of
    the same person turned either way (synthetic 3-D turns, see tests/face_photos.py)."""
    folder = tmp_path_factory.mktemp("citizen")
    card = folder / "card.jpg"
    card.write_bytes(card_bytes(face_engine))
    args = ["--card", str(card)]
    for direction, sign in (("left", 1), ("right", -1)):
        args.append(f"--{direction}")
        for i, frame in enumerate(
            head_turn_frames(face_engine, "obama3.jpg", [0, sign * 15, sign * 35])
        ):
            path = folder / f"{direction}-{i}.jpg"
            path.write_bytes(frame)
            args.append(str(path))
    return args


def authenticate(served: Served, citizen: list[str]) -> str:
    done = saoy("authenticate", "--server", served.target, *citizen)
    assert done.returncode == 0, done.stderr
    assert "face match" in done.stderr
    return done.stdout.strip()


def test_authenticate_prints_a_token_and_json(served: Served, citizen: list[str]) -> None:
    done = saoy("authenticate", "--server", served.target, "--json", "--kiosk", "k-7", *citizen)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["session_token"].startswith("sst_") and out["kiosk"] == "k-7"
    assert out["match_score"] >= out["match_threshold"] > 0.3
    assert out["liveness"] == f"head_turn:{out['challenge']}+screen"


def test_authenticate_with_someone_else_s_face_fails(
    served: Served, citizen: list[str], tmp_path: Path, face_engine: FaceEngine
) -> None:
    frames = []
    for i, frame in enumerate(head_turn_frames(face_engine, "biden.jpg", [0, 25])):
        frames.append(tmp_path / f"impostor-{i}.jpg")
        frames[-1].write_bytes(frame)
    card = citizen[:2]  # --card and its file; the frames are sent whichever way it asks
    done = saoy("authenticate", "--server", served.target, *card, *map(str, frames))
    assert done.returncode == 1
    assert "UNAUTHENTICATED" in done.stderr and "does not match" in done.stderr


def test_certify_then_verify_by_code_and_by_file(
    served: Served, scans: list[Path], tmp_path: Path, citizen: list[str]
) -> None:
    token = authenticate(served, citizen)
    done = saoy(
        "certify",
        "--server",
        served.target,
        "--json",
        "--session-token",
        token,
        "--out",
        str(tmp_path),
        "--type",
        "cccd_front",
        "--type",
        "cccd_back",
        *map(str, scans),
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["state"] == "ISSUED" and out["pages"] == 2
    assert set(out) >= {"state", "code", "url", "sha256", "pdf_path", "pages", "checks"}
    assert Path(out["pdf_path"]).read_bytes().startswith(b"%PDF")
    assert all(c["outcome"] == "pass" for c in out["checks"])
    assert "kiosk_hints" in {c["name"] for c in out["checks"]}
    # What was read, per page: type, edition, and each field with confidence and source.
    front, back = out["recognized"]
    assert (front["document_type"], back["document_type"]) == ("cccd_front", "cccd_back")
    assert front["edition"] == back["edition"] and front["edition"] in ("2021", "2024")
    number = front["fields"]["id_number"]
    assert number["confidence"] >= 80 and "mrz" in number["source"].split("+")

    by_code = saoy("verify", "--server", served.target, out["code"])
    assert by_code.returncode == 0, by_code.stdout + by_code.stderr
    assert by_code.stdout.startswith("VALID") and "pages:  2" in by_code.stdout

    by_file = saoy("verify", "--server", served.target, "--json", out["pdf_path"])
    assert json.loads(by_file.stdout)["verdict"] == "VALID"

    tampered = tmp_path / "tampered.pdf"
    data = bytearray(Path(out["pdf_path"]).read_bytes())
    data[len(data) // 2] ^= 0x20
    tampered.write_bytes(bytes(data))
    broken = saoy("verify", "--server", served.target, str(tampered))
    assert broken.returncode == 1 and broken.stdout.startswith("ALTERED")


def test_certify_without_a_session_is_refused(served: Served, scans: list[Path]) -> None:
    refused = saoy("certify", "--server", served.target, str(scans[0]))
    assert refused.returncode == 2
    assert "UNAUTHENTICATED" in refused.stderr and "authenticate" in refused.stderr


def test_certify_with_an_unknown_document_type_says_which(
    served: Served, scans: list[Path]
) -> None:
    wrong = saoy("certify", "--server", served.target, "--type", "passport", str(scans[0]))
    assert wrong.returncode == 2
    assert (
        "INVALID_ARGUMENT" in wrong.stderr and "'passport' is not a document type" in wrong.stderr
    )
    extra = saoy(
        "certify",
        "--server",
        served.target,
        "--type",
        "generic",
        "--type",
        "generic",
        str(scans[0]),
    )
    assert extra.returncode == 2 and "2 --type for 1 file(s)" in extra.stderr


def test_unknown_code_and_bad_files_say_why(
    served: Served, tmp_path: Path, citizen: list[str]
) -> None:
    unknown = saoy("verify", "--server", served.target, "0000-0000-0000-0000-0000")
    assert unknown.returncode == 1 and unknown.stdout.startswith("UNKNOWN")
    typo = saoy("verify", "--server", served.target, "0000-0000-0000-0000-0001")
    assert typo.returncode == 2 and "INVALID_ARGUMENT" in typo.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    env = {**os.environ, "SAOY_SESSION_TOKEN": authenticate(served, citizen)}
    refused = saoy("certify", "--server", served.target, str(notes), env=env)
    assert refused.returncode == 2 and "INVALID_ARGUMENT" in refused.stderr


def test_sigterm_stops_gracefully_and_the_pki_is_reused(tmp_path: Path) -> None:
    first = Served(tmp_path)
    root = (tmp_path / "pki" / "root.pem").read_bytes()
    code, _ = first.terminate()
    assert code == 0
    second = Served(tmp_path)
    try:
        assert (tmp_path / "pki" / "root.pem").read_bytes() == root
    finally:
        code, _ = second.terminate()
    assert code == 0


@pytest.mark.parametrize("command", [("--help",), ("serve", "--help"), ("verify", "--help")])
def test_commands_print_no_library_warnings(command: tuple[str, ...]) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = saoy(*command, env=env)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_the_help_lists_every_command_the_server_contributes() -> None:
    from importlib.metadata import entry_points

    contributed = {e.name for e in entry_points(group="saoy.commands")} - {"verify-offline"}
    listed = saoy("--help").stdout
    assert contributed, "the saoy.commands entry points are not installed"
    assert all(f"    {name} " in listed for name in contributed), listed
    for name in contributed:
        done = saoy(name, "--help")
        assert done.returncode == 0 and done.stdout.startswith(f"usage: saoy {name}"), done.stderr
