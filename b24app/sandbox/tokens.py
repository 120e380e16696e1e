"""OAuth tokens as the Bitrix24 OAuth server keeps them (docs/bitrix24-protocol.md §2).

Access tokens live 3600 s, authorization codes 30 s, refresh tokens 180 days. A refresh token is
single-use: redeeming it kills it and, unless the portal's `refresh_revokes_access` setting is off,
the access token issued together with it. Each install,
frame open, event or authorization starts a new, independent chain. Not thread-safe by itself:
the `Sandbox` lock guards it.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

ACCESS_TTL = 3600
CODE_TTL = 30
REFRESH_TTL = 180 * 24 * 3600
PRUNE_EVERY = 5000


def _opaque(nbytes: int = 35) -> str:
    """Hex-like opaque token, ~70 chars like the real ones (docs/bitrix24-protocol.md §1.2)."""
    return secrets.token_hex(nbytes)


@dataclass
class AccessToken:
    token: str
    client_id: str
    member_id: str
    user_id: int
    issued_at: float
    expires_at: float
    refresh_token: str = ""
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    member_id: str
    user_id: int
    expires_at: float
    access_token: str
    used: bool = False
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    client_id: str
    member_id: str
    user_id: int
    expires_at: float
    used: bool = False


@dataclass
class TokenStore:
    """All tokens and codes, indexed by value and by (client_id, member_id) for revocation."""

    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    by_install: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    issued: int = 0

    def issue(self, client_id: str, member_id: str, user_id: int, now: float) -> tuple[AccessToken, RefreshToken]:
        """Mint a new access/refresh pair (a new chain, or the next link of one)."""
        self.issued += 1
        if self.issued % PRUNE_EVERY == 0:
            self.prune(now)
        access = AccessToken(_opaque(), client_id, member_id, user_id, now, now + ACCESS_TTL)
        refresh = RefreshToken(_opaque(), client_id, member_id, user_id, now + REFRESH_TTL, access.token)
        access.refresh_token = refresh.token
        self.access[access.token] = access
        self.refresh[refresh.token] = refresh
        self.by_install.setdefault((client_id, member_id), []).extend((access.token, refresh.token))
        return access, refresh

    def issue_code(self, client_id: str, member_id: str, user_id: int, now: float) -> AuthCode:
        code = AuthCode(_opaque(16), client_id, member_id, user_id, now + CODE_TTL)
        self.codes[code.code] = code
        return code

    def redeem_refresh(self, token: str, client_id: str, now: float, *,
                       revoke_access: bool = True) -> RefreshToken | None:
        """Consume a refresh token; None if unknown, used, revoked, expired or not this client's.

        `revoke_access` kills the access token issued with it (the legacy docs); without it that token
        lives out its hour (what clients that refresh without saving expect, docs/bitrix24-protocol.md §2.3)."""
        record = self.refresh.get(token)
        if record is None or record.used or record.revoked or record.client_id != client_id:
            return None
        if record.expires_at <= now:
            return None
        record.used = True
        sibling = self.access.get(record.access_token)
        if sibling is not None and revoke_access:
            sibling.revoked = True
        return record

    def redeem_code(self, code: str, client_id: str, now: float) -> AuthCode | None:
        record = self.codes.get(code)
        if record is None or record.used or record.client_id != client_id or record.expires_at <= now:
            return None
        record.used = True
        return record

    def _matching(self, client_id: str | None, member_id: str, user_id: int | None) -> list[str]:
        keys = [k for k in self.by_install if k[1] == member_id and (client_id is None or k[0] == client_id)]
        values: list[str] = []
        for key in keys:
            values.extend(self.by_install[key])
        if user_id is None:
            return values
        out = []
        for value in values:
            rec = self.access.get(value) or self.refresh.get(value)
            if rec is not None and rec.user_id == user_id:
                out.append(value)
        return out

    def expire(self, member_id: str, now: float, client_id: str | None = None, user_id: int | None = None) -> int:
        """Make matching live access tokens expired (as if an hour had passed for them)."""
        count = 0
        for value in self._matching(client_id, member_id, user_id):
            rec = self.access.get(value)
            if rec is not None and not rec.revoked and rec.expires_at > now:
                rec.expires_at = now - 1
                count += 1
        return count

    def revoke_access(self, member_id: str, client_id: str | None = None, user_id: int | None = None) -> int:
        count = 0
        for value in self._matching(client_id, member_id, user_id):
            rec = self.access.get(value)
            if rec is not None and not rec.revoked:
                rec.revoked = True
                count += 1
        return count

    def revoke_refresh(self, member_id: str, client_id: str | None = None, user_id: int | None = None) -> int:
        count = 0
        for value in self._matching(client_id, member_id, user_id):
            rec = self.refresh.get(value)
            if rec is not None and not rec.revoked and not rec.used:
                rec.revoked = True
                count += 1
        return count

    def restore(self, access: list[AccessToken], refresh: list[RefreshToken], codes: list[AuthCode],
                issued: int) -> None:
        """Take back saved tokens (a restarted sandbox, persist.py); the per-install index is rebuilt."""
        for token in access:
            self.access[token.token] = token
            self.by_install.setdefault((token.client_id, token.member_id), []).append(token.token)
        for chain in refresh:
            self.refresh[chain.token] = chain
            self.by_install.setdefault((chain.client_id, chain.member_id), []).append(chain.token)
        for code in codes:
            self.codes[code.code] = code
        self.issued = max(self.issued, issued)

    def forget_install(self, client_id: str, member_id: str) -> None:
        """Uninstall: every token of the app on that portal becomes unknown (invalid_token)."""
        for value in self.by_install.pop((client_id, member_id), []):
            self.access.pop(value, None)
            self.refresh.pop(value, None)
        for code in [c for c, r in self.codes.items() if r.client_id == client_id and r.member_id == member_id]:
            del self.codes[code]

    def prune(self, now: float) -> None:
        """Drop revoked or used records (keeps memory flat under refresh storms).

        A pruned token answers exactly as before (invalid_token / invalid_grant); expired-but-not-revoked
        access tokens are kept so they keep answering expired_token."""
        for token in [t for t, r in self.access.items() if r.revoked]:
            del self.access[token]
        for token in [t for t, r in self.refresh.items() if r.used or r.revoked]:
            del self.refresh[token]
        for code in [c for c, r in self.codes.items() if r.expires_at + 60 < now]:
            del self.codes[code]
        for key, values in self.by_install.items():
            self.by_install[key] = [v for v in values if v in self.access or v in self.refresh]
