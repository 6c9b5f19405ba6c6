"""IETF Token Status List (draft-ietf-oauth-status-list), JWT form, 2 bits per entry.

A Status List is a byte array in which entry ``i`` occupies ``bits`` bits starting at
the least significant bit of byte ``i * bits // 8`` (section 4.1), compressed with
DEFLATE in the ZLIB data format (RFC 1950/1951) at the highest level and carried as
unpadded base64url in ``status_list.lst``. The Status List Token is a JWT with
``typ`` ``statuslist+jwt`` whose ``sub`` is the URI that Referenced Tokens carry in
``status.status_list.uri``; ``ttl`` tells relying parties how long they may cache it.

This module is pure: it builds, encodes and decodes lists and the token's claims. Which
entry holds which status is decided at request time by ``holder.credentials``
from the licence register and card revocation state. Signatures go through
``core.jws`` only (ES256, the service's key).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from core import jws

TOKEN_TYPE = "statuslist+jwt"  # noqa: S105 - a media type, not a secret
MEDIA_TYPE = "application/statuslist+jwt"
BITS = 2  # 0 valid, 1 invalid, 2 suspended (3 is application-specific, unused)

STATUS_VALID = 0x00
STATUS_INVALID = 0x01
STATUS_SUSPENDED = 0x02
STATUS_NAMES = {STATUS_VALID: "valid", STATUS_INVALID: "invalid", STATUS_SUSPENDED: "suspended"}

ALLOWED_BITS = frozenset({1, 2, 4, 8})
# Decompression bound: a list of 2^24 entries at 8 bits is 16 MiB; anything bigger is
# not a list we or any sane issuer would publish (protects against zip bombs).
MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024


class StatusListError(Exception):
    """A status list or Status List Token is not acceptable. Messages are fixed text."""


class StatusList:
    """A mutable array of ``size`` statuses of ``bits`` bits each."""

    def __init__(self, size: int, bits: int = BITS) -> None:
        if bits not in ALLOWED_BITS:
            raise ValueError("bits must be 1, 2, 4 or 8")
        if size <= 0 or size * bits % 8:
            raise ValueError("size must fill whole bytes")
        self.bits = bits
        self.size = size
        self._data = bytearray(size * bits // 8)

    @classmethod
    def from_bytes(cls, data: bytes, bits: int) -> StatusList:
        if bits not in ALLOWED_BITS:
            raise StatusListError("unsupported bits value")
        if not data:
            raise StatusListError("empty status list")
        status_list = cls(len(data) * 8 // bits, bits)
        status_list._data[:] = data
        return status_list

    def _locate(self, index: int) -> tuple[int, int]:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError("index must be an int")
        if not 0 <= index < self.size:
            raise IndexError("status list index out of range")
        bit = index * self.bits
        return bit // 8, bit % 8

    def __getitem__(self, index: int) -> int:
        byte, shift = self._locate(index)
        return (self._data[byte] >> shift) & ((1 << self.bits) - 1)

    def __setitem__(self, index: int, value: int) -> None:
        mask = (1 << self.bits) - 1
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= mask:
            raise ValueError("status value does not fit")
        byte, shift = self._locate(index)
        self._data[byte] = (self._data[byte] & ~(mask << shift) & 0xFF) | (value << shift)

    def __len__(self) -> int:
        return self.size

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def encode(self) -> dict[str, Any]:
        """The ``status_list`` claim: ``{"bits", "lst"}`` (ZLIB, level 9, base64url)."""
        compressed = zlib.compress(bytes(self._data), level=9)
        return {"bits": self.bits, "lst": jws.b64url_encode(compressed)}

    @classmethod
    def decode(cls, claim: Any) -> StatusList:
        """Strictly parses a ``status_list`` claim (as found in a Status List Token)."""
        if not isinstance(claim, Mapping):
            raise StatusListError("status_list is not an object")
        bits, lst = claim.get("bits"), claim.get("lst")
        if not isinstance(bits, int) or isinstance(bits, bool) or bits not in ALLOWED_BITS:
            raise StatusListError("unsupported bits value")
        if not isinstance(lst, str) or not lst:
            raise StatusListError("lst is not a string")
        try:
            compressed = jws.b64url_decode(lst)
        except jws.JwsError:
            raise StatusListError("lst is not base64url") from None
        decompressor = zlib.decompressobj()  # ZLIB format (RFC 1950) only
        try:
            data = decompressor.decompress(compressed, MAX_DECOMPRESSED_BYTES)
        except zlib.error:
            raise StatusListError("lst is not ZLIB data") from None
        if decompressor.unconsumed_tail:
            raise StatusListError("status list too large")
        if not decompressor.eof or decompressor.unused_data:
            raise StatusListError("lst is not ZLIB data")
        return cls.from_bytes(data, bits)


def status_list_claims(
    *,
    uri: str,
    status_list: StatusList,
    issued_at: int,
    expires_at: int,
    ttl: int,
    issuer: str | None = None,
) -> dict[str, Any]:
    if expires_at <= issued_at or ttl <= 0:
        raise ValueError("expiry and ttl must be positive")
    claims: dict[str, Any] = {
        "sub": uri,
        "iat": issued_at,
        "exp": expires_at,
        "ttl": ttl,
        "status_list": status_list.encode(),
    }
    if issuer is not None:
        claims["iss"] = issuer
    return claims
