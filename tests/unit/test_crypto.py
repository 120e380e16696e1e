"""Token encryption at rest: rotation answers and the memo of opened ciphertexts."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from b24app.storage.crypto import TokenCipher, TokenDecryptError

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_open_says_which_values_need_rewrapping() -> None:
    written_before = TokenCipher([OLD]).encrypt("refresh-1")
    rotated = TokenCipher([NEW, OLD])
    assert rotated.open(written_before) == ("refresh-1", False)
    rewrapped = rotated.encrypt("refresh-1")
    assert rotated.open(rewrapped) == ("refresh-1", True)
    assert TokenCipher([NEW]).decrypt(rewrapped) == "refresh-1"


def test_failures_are_never_memoised_and_successes_are_exact() -> None:
    cipher = TokenCipher([NEW], memo_size=2)
    foreign = TokenCipher([OLD]).encrypt("secret")
    for _ in range(2):
        with pytest.raises(TokenDecryptError):
            cipher.open(foreign)
    values = [cipher.encrypt(f"token-{i}") for i in range(5)]
    for _ in range(3):  # more values than the memo holds: evictions change nothing
        assert [cipher.decrypt(v) for v in values] == [f"token-{i}" for i in range(5)]
    assert cipher.decrypt(values[0]) == "token-0"
