"""Encryption at rest for tokens (MultiFernet): the first key encrypts, every key decrypts.

Rotation: put the new key first in B24_TOKEN_KEYS and keep the old ones after it; records written
under an old key are still read, and the store rewrites them under the new key when it reads them.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..errors import StorageError


class TokenDecryptError(StorageError):
    """Stored ciphertext that no configured key opens (a key was dropped too early)."""


class TokenCipher:
    def __init__(self, keys: Sequence[str], *, memo_size: int = 2048) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])
        # Each request reads a portal's record and opens the same ciphertexts until a refresh writes new
        # ones; a bounded memo keyed by the ciphertext spares ~50 µs per field. It is exact: under this
        # cipher's fixed keys a ciphertext always opens to the same answer (failures are not memoised).
        self._opened = functools.lru_cache(maxsize=memo_size)(self._open)

    def encrypt(self, plaintext: str) -> str:
        return self.encrypt_bytes(plaintext.encode())

    def encrypt_bytes(self, plaintext: bytes) -> str:
        return self._all.encrypt(plaintext).decode()

    def decrypt(self, ciphertext: str) -> str:
        return self.open_bytes(ciphertext)[0].decode()

    def open(self, ciphertext: str) -> tuple[str, bool]:
        """The plaintext, and whether the primary key wrote it (False: rewrite it under the primary key)."""
        plaintext, current = self.open_bytes(ciphertext)
        return plaintext.decode(), current

    def open_bytes(self, ciphertext: str) -> tuple[bytes, bool]:
        """`open` for binary plaintexts. The primary key is tried first, so the common case costs one
        decryption for both answers."""
        return self._opened(ciphertext)

    def _open(self, ciphertext: str) -> tuple[bytes, bool]:
        raw = ciphertext.encode()
        try:
            return self._primary.decrypt(raw), True
        except InvalidToken:
            pass
        try:
            return self._all.decrypt(raw), False
        except InvalidToken:
            raise TokenDecryptError("no configured B24_TOKEN_KEYS key decrypts this value") from None
