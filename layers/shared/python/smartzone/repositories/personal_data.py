"""Residents' personal fields, encrypted field-level with envelope encryption; the ID-HMAC key.

Why field-level (on top of the table's and buckets' SSE with the stack's customer-managed key):
table SSE protects the disks, but every principal that may ``GetItem`` or ``Query`` the table,
the table's stream, its point-in-time exports and backups, and the workflow's partition files see
the plain values. Sealing the ID number, name, phone, address and birth date with a data key that
only KMS can unwrap (``kms:Decrypt`` on the personal-data key, with an encryption context) means:
only the functions granted that key read them, every unwrap is in CloudTrail, and revoking the
grant (or disabling the key) makes every copy unreadable at once.

- Format (one attribute per item, ``personal``): ``{"v": 1, "edk": …, "nonce": …, "ct": …}``,
  AES-256-GCM (``cryptography``) over the JSON of the fields, with the item's ``pk`` as associated
  data (a sealed blob moved to another record does not open).
- Data keys: one ``GenerateDataKey`` per :class:`Sealer` for up to ``max_uses`` seals (a merge
  partition seals hundreds of records with one call); unwrapped keys are cached per process.
- Wrapping: KMS (``personal_data_key_id``, the key's alias) in the cloud; locally (no KMS in the
  embedded platform) a 32-byte key from ``personal_data_local_key`` wraps data keys with AES-GCM
  instead (when set it wins: the platform sets it, the stack never does).
- The ID-HMAC key (:func:`id_hmac_key`): from Secrets Manager (``id_hmac_secret_arn``, generated
  by the stack and encrypted with its key) or locally ``id_hmac_secret``. ``id_key`` of
  :mod:`smartzone.domain.idnumbers` with this key is the only lookup key of a resident.
"""

from __future__ import annotations

import base64
import json
import os
from collections import OrderedDict
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from smartzone.repositories.clients import client
from smartzone.settings import get_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
ENCRYPTION_CONTEXT = {"purpose": "smartzone-personal-data"}
_LOCAL_AAD = b"smartzone-data-key"


class PersonalDataKeyMissing(RuntimeError):
    """Neither a KMS key nor a local key is configured for personal data."""


def _aead(key: bytes) -> AESGCM:
    """AES-256-GCM (imported on first use: the API's cold start does not pay for it)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


class KeyWrapper(Protocol):
    def new_data_key(self) -> tuple[bytes, str]:
        """A fresh 32-byte data key and its wrapped (encrypted) form."""
        ...

    def unwrap(self, wrapped: str) -> bytes: ...


class KmsWrapper:
    """Data keys from KMS ``GenerateDataKey``; unwrapped with ``Decrypt`` (encryption context bound)."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id

    def new_data_key(self) -> tuple[bytes, str]:
        answer = client("kms").generate_data_key(
            KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=ENCRYPTION_CONTEXT
        )
        return bytes(answer["Plaintext"]), "kms:" + _b64(answer["CiphertextBlob"])

    def unwrap(self, wrapped: str) -> bytes:
        if not wrapped.startswith("kms:"):
            raise ValueError("not a KMS-wrapped data key")
        answer = client("kms").decrypt(
            CiphertextBlob=_unb64(wrapped[4:]), EncryptionContext=ENCRYPTION_CONTEXT, KeyId=self.key_id
        )
        return bytes(answer["Plaintext"])


class LocalWrapper:
    """Local platform and tests: data keys wrapped with AES-GCM under a configured 32-byte key."""

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the local personal-data key must be 32 bytes (base64 in the setting)")
        self._aead = _aead(master)

    def new_data_key(self) -> tuple[bytes, str]:
        key, nonce = os.urandom(32), os.urandom(12)
        return key, "local:" + _b64(nonce + self._aead.encrypt(nonce, key, _LOCAL_AAD))

    def unwrap(self, wrapped: str) -> bytes:
        if not wrapped.startswith("local:"):
            raise ValueError("not a locally wrapped data key")
        raw = _unb64(wrapped[6:])
        return self._aead.decrypt(raw[:12], raw[12:], _LOCAL_AAD)


class Sealer:
    """Seals and opens personal-field blobs; one per process (:func:`sealer`) or per merge partition."""

    def __init__(self, wrapper: KeyWrapper, max_uses: int = 10_000, cache_size: int = 256) -> None:
        self.wrapper = wrapper
        self.max_uses = max_uses
        self._current: tuple[AESGCM, str] | None = None
        self._uses = 0
        self._opened: OrderedDict[str, AESGCM] = OrderedDict()
        self._cache_size = cache_size

    def seal(self, fields: dict[str, Any], aad: str) -> dict[str, Any]:
        """The encrypted form of ``fields`` (JSON-serialisable), bound to ``aad`` (the item's pk)."""
        if self._current is None or self._uses >= self.max_uses:
            key, wrapped = self.wrapper.new_data_key()
            self._current, self._uses = (_aead(key), wrapped), 0
        aead, wrapped = self._current
        self._uses += 1
        nonce = os.urandom(12)
        plain = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        return {
            "v": FORMAT_VERSION,
            "edk": wrapped,
            "nonce": _b64(nonce),
            "ct": _b64(aead.encrypt(nonce, plain, aad.encode())),
        }

    def open(self, sealed: dict[str, Any], aad: str) -> dict[str, Any]:
        """The fields of a sealed blob (raises ``cryptography.exceptions.InvalidTag`` if tampered)."""
        if sealed.get("v") != FORMAT_VERSION:
            raise ValueError(f"unknown personal-data format {sealed.get('v')!r}")
        wrapped = str(sealed["edk"])
        aead = self._opened.get(wrapped)
        if aead is None:
            aead = _aead(self.wrapper.unwrap(wrapped))
            self._opened[wrapped] = aead
            if len(self._opened) > self._cache_size:
                self._opened.popitem(last=False)
        else:
            self._opened.move_to_end(wrapped)
        plain = aead.decrypt(_unb64(str(sealed["nonce"])), _unb64(str(sealed["ct"])), aad.encode())
        value = json.loads(plain)
        if not isinstance(value, dict):
            raise ValueError("sealed personal data is not an object")
        return value


def wrapper_from_settings() -> KeyWrapper:
    settings = get_settings()
    if settings.personal_data_local_key:  # only ever set locally (the embedded platform has no KMS)
        return LocalWrapper(_unb64(settings.personal_data_local_key))
    if settings.personal_data_key_id:
        return KmsWrapper(settings.personal_data_key_id)
    raise PersonalDataKeyMissing("PERSONAL_DATA_KEY_ID or PERSONAL_DATA_LOCAL_KEY must be set")


@cache
def sealer() -> Sealer:
    """The process-wide sealer (tests call ``sealer.cache_clear()`` after changing settings)."""
    return Sealer(wrapper_from_settings())


@cache
def id_hmac_key() -> bytes:
    """The key of the ID-number HMAC: locally from the environment, Secrets Manager in the cloud."""
    settings = get_settings()
    if settings.id_hmac_secret:
        return settings.id_hmac_secret.encode()
    if settings.id_hmac_secret_arn:
        from aws_lambda_powertools.utilities.parameters import get_secret

        return str(get_secret(settings.id_hmac_secret_arn, max_age=3600)).encode()
    raise RuntimeError("ID_HMAC_SECRET or ID_HMAC_SECRET_ARN must be set")
