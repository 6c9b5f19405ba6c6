"""The embedded platform's own store and outputs never hold a plaintext My Number.

(The scan across the licensing database, responses and logs is the end-to-end test of
the licensing and verification packages; this one covers what this package writes.)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from identity import LICENSING_AGENCY, verifier_agency

POPULATION = 300


def _digit_runs(blob: bytes) -> set[str]:
    """Every 12-digit window in a file, as ASCII, UTF-16 (both byte orders and alignments)."""
    found = {m.decode() for m in re.findall(rb"(?=([0-9]{12}))", blob)}
    for unit in (rb"[0-9]\x00", rb"\x00[0-9]"):
        for run in re.findall(rb"(?=((?:%s){12}))" % unit, blob):
            found.add(run.replace(b"\x00", b"").decode())
    return found


def _code_bodies(blob: bytes) -> set[bytes]:
    return set(re.findall(rb"(?=([A-Za-z0-9_-]{43}))", blob))


def test_store_key_file_codes_and_logs_hold_no_my_number(
    app, identity_platform, my_number_factory, certificate_factory, caplog
):
    caplog.set_level(logging.DEBUG)
    numbers = [my_number_factory() for _ in range(POPULATION)]
    codes = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers[:200])
    codes += [identity_platform.code_for_my_number(LICENSING_AGENCY, n) for n in numbers[200:]]
    for number in numbers[:30]:
        identity_platform.register_certificate(certificate_factory(), number)
    subjects = [
        identity_platform.translate(c, LICENSING_AGENCY, verifier_agency("h")) for c in codes
    ]
    cli = app.test_cli_runner()
    outputs = [
        cli.invoke(args=["identity-platform", "status"]).output,
        cli.invoke(args=["identity-platform", "rotate-keys"]).output,
    ]
    codes_after = identity_platform.codes_for_my_numbers(LICENSING_AGENCY, numbers)

    # Everything the platform wrote under the instance folder: the SQLite file, its
    # WAL and shared memory, the key file.
    instance = Path(app.config["INSTANCE_PATH"])
    files = [p for p in instance.rglob("*") if p.is_file()]
    assert any(p.name == "identity_platform.sqlite3" for p in files)
    assert any(p.name == "master-keys.json" for p in files)
    blobs = {str(p): p.read_bytes() for p in files}
    assert sum(len(b) for b in blobs.values()) > POPULATION * 100  # really holds the people

    texts = [*codes, *subjects, *codes_after, *outputs, caplog.text]
    digit_runs = {name: _digit_runs(blob) for name, blob in blobs.items()}
    code_bodies = {name: _code_bodies(blob) for name, blob in blobs.items()}
    for number in numbers:
        for name, runs in digit_runs.items():
            assert number not in runs, f"a My Number found in {name}"
        for text in texts:
            assert number not in text

    # Nor does the store keep any agency code (it derives them when asked).
    all_codes = {c.split(".", 1)[1].encode() for c in [*codes, *subjects, *codes_after]}
    for name, bodies in code_bodies.items():
        assert not bodies & all_codes, f"an agency code found in {name}"


def test_the_scan_would_find_a_number(my_number_factory):
    number = my_number_factory()
    assert number in _digit_runs(b"\x01" + number.encode() + b"\x02")
    assert number in _digit_runs(b"\x01" + number.encode("utf-16-le"))
    assert number in _digit_runs(number.encode("utf-16-be") + b"\x07")
