"""Encryption at rest for tokens (MultiFernet): the first key encrypts, every key decrypts.

Rotation: put the new key first in B24_TOKEN_KEYS and keep the old ones after it; records written
under an old key are still read, and the store rewrites them under the new key when it reads them.
"""
from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenDecryptError(Exception):
    """Stored ciphertext that no configured key opens (a key was dropped too early)."""


class TokenCipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._all.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._all.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenDecryptError("no configured B24_TOKEN_KEYS key decrypts this value") from None

    def is_current(self, ciphertext: str) -> bool:
        """True when the primary key wrote this value, i.e. no rewrite is needed."""
        try:
            self._primary.decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True
