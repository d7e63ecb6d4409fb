"""Identity: deterministic keys and names, signatures, and key-file safety."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from peer.net.identity import Identity, IdentityError, short_name, verify

SEED_A = bytes(range(32))
SEED_B = bytes(range(1, 33))


def test_from_seed_is_deterministic() -> None:
    a1, a2, b = Identity.from_seed(SEED_A), Identity.from_seed(SEED_A), Identity.from_seed(SEED_B)
    assert a1.public_key == a2.public_key and len(a1.public_key) == 32
    assert a1.public_hex == a1.public_key.hex()
    assert a1.name == a2.name == short_name(a1.public_key)
    assert a1.name != b.name
    assert re.fullmatch(r"[a-z]+-[a-z]+-[0-9a-f]{4}", a1.name)


def test_names_are_distinct_across_many_keys() -> None:
    names = {Identity.from_seed(i.to_bytes(32, "big")).name for i in range(500)}
    assert len(names) == 500


def test_from_seed_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Identity.from_seed(b"short")


def test_sign_and_verify() -> None:
    a, b = Identity.from_seed(SEED_A), Identity.from_seed(SEED_B)
    sig = a.sign(b"hello")
    assert len(sig) == 64
    assert verify(a.public_key, b"hello", sig)
    assert Identity.verify(a.public_key, b"hello", sig)
    assert not verify(a.public_key, b"hellO", sig)
    assert not verify(b.public_key, b"hello", sig)
    assert not verify(a.public_key, b"hello", sig[:-1])
    assert not verify(a.public_key[:31], b"hello", sig)
    assert not verify(b"\xff" * 32, b"hello", sig)  # not a valid curve point: False, no exception


def test_save_creates_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    old = os.umask(0)
    try:
        Identity.from_seed(SEED_A).save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load(path).public_key == Identity.from_seed(SEED_A).public_key
    assert not (tmp_path / "node.key.tmp").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_load_refuses_group_or_world_readable_key(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    Identity.from_seed(SEED_A).save(path)
    path.chmod(mode)
    with pytest.raises(IdentityError, match="chmod 600"):
        Identity.load(path)


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    Identity.from_seed(SEED_A).save(path)
    with pytest.raises(IdentityError, match="exists"):
        Identity.from_seed(SEED_B).save(path)
    path.chmod(0o644)  # overwriting must not inherit the old file's wider mode
    Identity.from_seed(SEED_B).save(path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load(path).public_key == Identity.from_seed(SEED_B).public_key


def test_load_reports_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="cannot open"):
        Identity.load(tmp_path / "absent.key")
    for content in (b"not hex\n", b"abcd\n", b"\xff\xfe"):
        bad = tmp_path / "bad.key"
        bad.unlink(missing_ok=True)
        fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, content)
        os.close(fd)
        with pytest.raises(IdentityError):
            Identity.load(bad)


def test_repr_never_shows_the_secret() -> None:
    ident = Identity.from_seed(SEED_A)
    assert SEED_A.hex() not in repr(ident)
    assert ident.name in repr(ident)
