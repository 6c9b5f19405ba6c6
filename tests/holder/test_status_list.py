"""Token Status List: bit layout, compression, token issuance and strict parsing."""

from __future__ import annotations

import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from core import jws
from holder import status_list as sl
from tests.fixtures.holder import sign_status_list_token, status_list_of, verify_status_list_token

URI = "https://licences.example/v1/status-lists/1"


@pytest.fixture(scope="module")
def issuer_key():
    return ec.generate_private_key(ec.SECP256R1())


def test_spec_example_two_bits_round_trips():
    # draft-ietf-oauth-status-list, section 4.1 example (bits 2): bytes c9 44 f9.
    statuses = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    encoded = status_list_of(statuses).encode()
    assert encoded == {"bits": 2, "lst": "eNo76fITAAPfAgc"}
    decoded = sl.StatusList.decode(encoded)
    assert decoded.to_bytes() == bytes.fromhex("c944f9")
    assert [decoded[i] for i in range(12)] == statuses


def test_spec_example_one_bit_decodes():
    decoded = sl.StatusList.decode({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})
    assert decoded.to_bytes() == bytes.fromhex("b9a3")
    assert [decoded[i] for i in range(16)] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]


def test_entries_are_independent_and_lsb_first():
    status_list = sl.StatusList(8)
    status_list[0] = sl.STATUS_INVALID
    status_list[5] = sl.STATUS_SUSPENDED
    assert status_list.to_bytes() == bytes([0b00000001, 0b00001000])
    status_list[0] = sl.STATUS_VALID
    assert status_list[0] == 0 and status_list[5] == 2 and status_list[4] == 0


@pytest.mark.parametrize("value", [-1, 4, True, "1"])
def test_values_must_fit_two_bits(value):
    with pytest.raises(ValueError):
        sl.StatusList(4)[0] = value


@pytest.mark.parametrize("index", [-1, 4, 100])
def test_index_out_of_range(index):
    with pytest.raises(IndexError):
        sl.StatusList(4)[index]


def test_lst_is_zlib_at_highest_level():
    encoded = sl.StatusList(16384).encode()
    raw = jws.b64url_decode(encoded["lst"])
    assert raw[:2] == b"\x78\xda"  # ZLIB header, best compression
    assert zlib.decompress(raw) == bytes(4096)
    assert len(encoded["lst"]) < 100  # a fresh list compresses to almost nothing


@pytest.mark.parametrize(
    "claim",
    [
        None,
        [],
        {"bits": 3, "lst": "eNo76fITAAPfAgc"},
        {"bits": True, "lst": "eNo76fITAAPfAgc"},
        {"bits": 2},
        {"bits": 2, "lst": ""},
        {"bits": 2, "lst": "eNo76fITAAPfAgc="},  # padded
        {"bits": 2, "lst": "not base64!"},
        {"bits": 2, "lst": jws.b64url_encode(b"plain bytes")},
        {"bits": 2, "lst": jws.b64url_encode(zlib.compress(b"\x01") + b"trailing")},
        {"bits": 2, "lst": jws.b64url_encode(zlib.compress(b"\x01")[:-2])},  # truncated
        {"bits": 2, "lst": jws.b64url_encode(zlib.compress(b""))},  # empty list
        # raw DEFLATE without the ZLIB wrapper is not the specified format
        {"bits": 2, "lst": jws.b64url_encode(zlib.compress(b"\x01", wbits=-15))},
    ],
)
def test_decode_rejects(claim):
    with pytest.raises(sl.StatusListError):
        sl.StatusList.decode(claim)


def test_decode_refuses_zip_bombs():
    bomb = zlib.compress(bytes(sl.MAX_DECOMPRESSED_BYTES + 1), level=9)
    with pytest.raises(sl.StatusListError):
        sl.StatusList.decode({"bits": 2, "lst": jws.b64url_encode(bomb)})


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=300))
def test_round_trip_any_statuses(statuses):
    decoded = sl.StatusList.decode(status_list_of(statuses).encode())
    assert [decoded[i] for i in range(len(statuses))] == statuses
    assert all(decoded[i] == 0 for i in range(len(statuses), decoded.size))


@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(jws.b64url_encode)))
def test_decode_never_crashes(lst):
    try:
        sl.StatusList.decode({"bits": 2, "lst": lst})
    except sl.StatusListError:
        pass


def _token(issuer_key, *, uri=URI, iat=1_000, exp=1_600, ttl=60, headers=None, statuses=(1,)):
    claims = sl.status_list_claims(
        uri=uri,
        status_list=status_list_of(list(statuses)),
        issued_at=iat,
        expires_at=exp,
        ttl=ttl,
    )
    if headers is not None:
        return jws.sign(claims, issuer_key, "ES256", headers)
    return sign_status_list_token(claims, issuer_key, "k1")


def test_token_round_trip(issuer_key):
    token = _token(issuer_key, statuses=[0, 1, 2])
    header = jws.parse_compact(token).header
    assert header == {"alg": "ES256", "typ": "statuslist+jwt", "kid": "k1"}
    parsed = verify_status_list_token(
        token,
        public_key_for_kid={"k1": issuer_key.public_key()}.get,
        expected_uri=URI,
        now=1_100,
    )
    assert parsed.claims["sub"] == URI and parsed.ttl == 60 and parsed.expires_at == 1_600
    assert [parsed.status(i) for i in range(3)] == [0, 1, 2]
    with pytest.raises(sl.StatusListError):
        parsed.status(10_000)


@pytest.mark.parametrize(
    "kwargs, now",
    [
        ({"uri": "https://elsewhere.example/1"}, 1_100),  # sub is not the referenced list
        ({}, 1_700),  # expired
        ({"iat": 5_000, "exp": 6_000}, 1_100),  # issued in the future
        ({"headers": {"typ": "JWT", "kid": "k1"}}, 1_100),
        ({"headers": {"typ": "statuslist+jwt", "kid": "other"}}, 1_100),
        ({"headers": {"typ": "statuslist+jwt", "kid": "k1", "crit": ["x"]}}, 1_100),
    ],
)
def test_token_rejected(issuer_key, kwargs, now):
    token = _token(issuer_key, **kwargs)
    with pytest.raises(sl.StatusListError):
        verify_status_list_token(
            token,
            public_key_for_kid={"k1": issuer_key.public_key()}.get,
            expected_uri=URI,
            now=now,
        )


def test_token_with_foreign_signature_rejected(issuer_key):
    token = _token(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(sl.StatusListError):
        verify_status_list_token(
            token,
            public_key_for_kid={"k1": issuer_key.public_key()}.get,
            expected_uri=URI,
            now=1_100,
        )
