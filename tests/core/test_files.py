"""Atomic file writes (core.files): a reader never sees half a file, modes are exact."""

from __future__ import annotations

import os

from core.files import write_atomic


def test_writes_with_the_mode_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "deep" / "key.pem"
    assert write_atomic(target, b"secret", mode=0o600)
    assert target.read_bytes() == b"secret"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(target.parent) == ["key.pem"]


def test_replaces_an_existing_file_whole(tmp_path):
    target = tmp_path / "state.json"
    write_atomic(target, b"old")
    inode = target.stat().st_ino
    assert write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != inode  # a new file moved in, not rewritten in place


def test_without_replace_the_first_writer_wins(tmp_path):
    target = tmp_path / "signing-key.pem"
    assert write_atomic(target, b"first", mode=0o600, replace=False)
    assert not write_atomic(target, b"second", mode=0o600, replace=False)
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["signing-key.pem"]
