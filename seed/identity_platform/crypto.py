"""Agency codes and My Number protection, all keyed from the versioned master keys.

Code format: ``v<version>.<base64url, unpadded>`` of AES-SIV (RFC 5297, AES-256-SIV)
over the person's 16-byte random internal id, under a key that HKDF derives from the
master key of that version *for that agency*, with the agency and version also bound
in as associated data. So codes are deterministic per (agency, person, key version),
differ across agencies, reveal nothing without the keys, and a code presented to
another agency, altered, or made up fails authentication.

My Numbers at rest: AES-256-GCM with a random nonce (the person id and key version as
associated data), plus a blind index for the lookup: keyed BLAKE2b-256 (RFC 7693's MAC
mode; a PRF like HMAC-SHA256, about four times faster in bulk) under its own derived
key. The plaintext number is never stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from identity.errors import IdentityKeyError, InvalidAgencyCode
from seed.identity_platform.keys import derive

PERSON_ID_BYTES = 16
_TIME_PREFIX_BYTES = 6
_CODE_AD = b"licence-verification/identity-platform/agency-code"
_MY_NUMBER_AD = b"licence-verification/identity-platform/my-number"
_CODE = re.compile(r"v([1-9][0-9]{0,5})\.([A-Za-z0-9_-]{43})")
_MAX_CODE_LENGTH = 64
_MAX_AGENCY_LENGTH = 200
_NONCE_BYTES = 12
_CODE_BODY_CHARS = 43  # unpadded base64 of 16-byte id + 16-byte synthetic IV
_URL_SAFE = bytes.maketrans(b"+/", b"-_")
_UNTRUSTED_RELOAD_INTERVAL = 1.0  # seconds between key reloads caused by client input


def new_person_ids(count: int) -> list[bytes]:
    """Random 16-byte person ids: 80 random bits after a 48-bit millisecond clock.

    The clock prefix (as in UUIDv7) only keeps the store's primary-key index appending
    instead of splitting pages at random during bulk enrolment; ids never leave the
    store unencrypted.
    """
    prefix = (time.time_ns() // 1_000_000).to_bytes(_TIME_PREFIX_BYTES, "big")
    tail = PERSON_ID_BYTES - _TIME_PREFIX_BYTES
    randomness = os.urandom(tail * count)
    return [prefix + randomness[n * tail : (n + 1) * tail] for n in range(count)]


def check_agency(agency: str) -> bytes:
    """Agency names are short printable ASCII labels (``licensing``, ``verifier:<id>``)."""
    if (
        not isinstance(agency, str)
        or not 0 < len(agency) <= _MAX_AGENCY_LENGTH
        or not agency.isascii()
        or not agency.isprintable()
    ):
        raise ValueError("agency must be a non-empty printable ASCII label")
    return agency.encode("ascii")


class PlatformCrypto:
    """Caches every derived key: deriving is far slower than using one."""

    def __init__(self, load_keys: Callable[[], Mapping[int, bytes]]) -> None:
        self._load_keys = load_keys
        self._lock = threading.Lock()
        self._masters: dict[int, bytes] = {}
        self._agency_ciphers: dict[tuple[int, str], AESSIV] = {}
        self._storage: dict[int, tuple[AESGCM, bytes]] = {}
        self._last_reload = float("-inf")

    # -- master keys ---------------------------------------------------------------

    def reload(self) -> Mapping[int, bytes]:
        keys = dict(self._load_keys())
        with self._lock:
            self._masters = keys
            self._last_reload = time.monotonic()
        return keys

    def versions(self) -> list[int]:
        return sorted(self._masters or self.reload())

    def master(self, version: int, *, untrusted: bool = False) -> bytes:
        key = self._masters.get(version)
        if key is None and not (
            # A version named by client input (a code) reloads the keys at most once a second.
            untrusted and time.monotonic() - self._last_reload < _UNTRUSTED_RELOAD_INTERVAL
        ):
            # Another process may have added a version (rotate-keys): read the source again.
            key = self.reload().get(version)
        if key is None:
            raise IdentityKeyError("The identity platform's store needs a missing key version.")
        return key

    # -- agency codes ----------------------------------------------------------------

    def _agency_cipher(self, version: int, agency: str, *, untrusted: bool = False) -> AESSIV:
        cipher = self._agency_ciphers.get((version, agency))
        if cipher is None:
            info = b"agency-code\x00" + check_agency(agency)
            cipher = AESSIV(derive(self.master(version, untrusted=untrusted), info, 64))
            with self._lock:
                if len(self._agency_ciphers) > 10_000:
                    self._agency_ciphers.clear()
                self._agency_ciphers[(version, agency)] = cipher
        return cipher

    def _code_ad(self, version: int, agency: str) -> list[bytes]:
        return [_CODE_AD, str(version).encode("ascii"), agency.encode("ascii")]

    def encoder(self, agency: str, version: int) -> Callable[[bytes], str]:
        """A function person id -> code for one (agency, version), for bulk use."""
        encrypt = self._agency_cipher(version, agency).encrypt
        ad = self._code_ad(version, agency)
        prefix = f"v{version}."
        b2a = binascii.b2a_base64

        def encode(person_id: bytes) -> str:
            if len(person_id) != PERSON_ID_BYTES:
                raise ValueError("person ids are 16 bytes")
            # 32 bytes -> 43 base64 characters and one "=" of padding, dropped.
            text = b2a(encrypt(person_id, ad), newline=False)[:_CODE_BODY_CHARS]
            return prefix + text.translate(_URL_SAFE).decode("ascii")

        return encode

    def encode(self, person_id: bytes, agency: str, version: int) -> str:
        return self.encoder(agency, version)(person_id)

    def decode(self, code: str, agency: str) -> tuple[int, bytes]:
        """(key version, person id) of one of ``agency``'s codes, or InvalidAgencyCode."""
        check_agency(agency)
        if not isinstance(code, str) or len(code) > _MAX_CODE_LENGTH:
            raise InvalidAgencyCode()
        match = _CODE.fullmatch(code)
        if match is None:
            raise InvalidAgencyCode()
        version, body = int(match.group(1)), match.group(2)
        try:
            sealed = base64.urlsafe_b64decode(body + "=")
        except (binascii.Error, ValueError):
            raise InvalidAgencyCode() from None
        # One code, one spelling: reject non-canonical base64 (unused trailing bits set).
        if base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii") != body:
            raise InvalidAgencyCode()
        try:
            cipher = self._agency_cipher(version, agency, untrusted=True)
        except IdentityKeyError:
            raise InvalidAgencyCode() from None
        try:
            person_id = cipher.decrypt(sealed, self._code_ad(version, agency))
        except InvalidTag:
            raise InvalidAgencyCode() from None
        if len(person_id) != PERSON_ID_BYTES:
            raise InvalidAgencyCode()
        return version, person_id

    # -- My Numbers at rest ------------------------------------------------------------

    def _storage_keys(self, version: int) -> tuple[AESGCM, bytes]:
        keys = self._storage.get(version)
        if keys is None:
            master = self.master(version)
            keys = (
                AESGCM(derive(master, b"my-number-encryption", 32)),
                derive(master, b"my-number-blind-index", 32),
            )
            with self._lock:
                self._storage[version] = keys
        return keys

    def blind_indexer(self, version: int) -> Callable[[str], bytes]:
        index_key = self._storage_keys(version)[1]
        blake2b = hashlib.blake2b

        def index(my_number: str) -> bytes:
            return blake2b(my_number.encode("ascii"), key=index_key, digest_size=32).digest()

        return index

    def blind_index(self, my_number: str, version: int) -> bytes:
        return self.blind_indexer(version)(my_number)

    @staticmethod
    def _my_number_ad_prefix(version: int) -> bytes:
        return b"\x00".join((_MY_NUMBER_AD, str(version).encode("ascii"), b""))

    def my_number_sealer(self, version: int) -> Callable[[bytes, str], bytes]:
        aead = self._storage_keys(version)[0]
        encrypt = aead.encrypt
        ad_prefix = self._my_number_ad_prefix(version)
        urandom = os.urandom

        def seal(person_id: bytes, my_number: str) -> bytes:
            nonce = urandom(_NONCE_BYTES)
            return nonce + encrypt(nonce, my_number.encode("ascii"), ad_prefix + person_id)

        return seal

    def seal_my_number(self, person_id: bytes, my_number: str, version: int) -> bytes:
        return self.my_number_sealer(version)(person_id, my_number)

    def open_my_number(self, person_id: bytes, sealed: bytes, version: int) -> str:
        aead = self._storage_keys(version)[0]
        ad = self._my_number_ad_prefix(version) + person_id
        try:
            plain = aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], ad)
        except InvalidTag:
            raise IdentityKeyError("A stored My Number does not decrypt with its key.") from None
        return plain.decode("ascii")
