"""Bearer tokens: JWTs whose `sub` (or configured claim) is the owner of the uploads.

HS256 tokens signed with the broker's shared secret (local development, or apps that
mint their own), and RS256, ES256 and EdDSA tokens from the app's identity provider
(`broker.domain.oidc`). Whichever signed it, a token must name its owner and expire within
30 days.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from broker.common import clock
from broker.common.errors import NotAuthenticated
from broker.domain.oidc import ALGORITHMS as OIDC_ALGORITHMS
from broker.domain.oidc import OidcVerifier

ALGORITHM = "HS256"
# Tolerated clock difference between whoever signs tokens and us, on exp, nbf and iat.
LEEWAY_SECONDS = 30
# A token that claims to live longer is refused: no credential should be valid for years.
MAX_TOKEN_SECONDS = 30 * 24 * 3600
# OpenID Connect's limit for a subject identifier; owner ids are keys in the records.
MAX_SUBJECT_LENGTH = 255
# A token verified is trusted again, unchecked, for this long at most (never past its
# exp): a browser sends the same token with every call, and a provider's key withdrawn
# still stops its tokens within a minute.
VERIFIED_FOR_SECONDS = 60
VERIFIED_KEPT = 10_000  # tokens remembered at once, the oldest forgotten first


def issue_token(secret: bytes, subject: str, ttl_seconds: int) -> str:
    """A token for `subject`, valid for `ttl_seconds`."""
    if not subject.strip():
        raise ValueError("a token needs a non-empty user id")
    if _subject_problem(subject):
        raise ValueError(f"the user id {_subject_problem(subject)}")
    if ttl_seconds > MAX_TOKEN_SECONDS:
        raise ValueError(f"a token lives at most {MAX_TOKEN_SECONDS} seconds (30 days)")
    issued = clock.now()
    claims = {"sub": subject, "iat": issued, "exp": issued + timedelta(seconds=ttl_seconds)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


@dataclass(frozen=True)
class Identity:
    """Who a valid token speaks for, and until when."""

    owner: str
    expires_at: datetime


class TokenVerifier:
    """Verifies the tokens this deployment accepts: HS256 with `secret` (when set) and
    the identity provider's (when `oidc` is set). Each kind is checked only with its
    own keys, so a token cannot pass off a public key as a shared secret."""

    def __init__(self, secret: bytes | None, oidc: OidcVerifier | None = None) -> None:
        if secret is None and oidc is None:
            raise ValueError("tokens need a shared secret or an identity provider")
        self.secret = secret
        self.oidc = oidc
        self._verified: dict[str, tuple[Identity, float]] = {}  # token: who, trusted until
        self._lock = threading.Lock()

    def verify(self, token: str) -> Identity:
        """Who a valid token speaks for; NotAuthenticated says why a token is refused."""
        now = clock.now().timestamp()
        known = self._verified.get(token)
        if known is not None and now < known[1]:
            return known[0]
        identity = self._checked(token)
        until = min(now + VERIFIED_FOR_SECONDS, identity.expires_at.timestamp() + LEEWAY_SECONDS)
        with self._lock:
            if len(self._verified) >= VERIFIED_KEPT:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (identity, until)
        return identity

    def _checked(self, token: str) -> Identity:
        if self.secret is not None and _names_algorithm(token, ALGORITHM):
            # The common case, parsed once: PyJWT's decode checks the header again.
            return _identity(_shared_secret_claims(self.secret, token), "sub")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise NotAuthenticated(f"The token is not valid: {exc}.",
                                   code="invalid_token") from None
        algorithm = header.get("alg")
        if algorithm == ALGORITHM and self.secret is not None:
            return _identity(_shared_secret_claims(self.secret, token), "sub")
        if algorithm in OIDC_ALGORITHMS and self.oidc is not None:
            return _identity(self.oidc.claims(token, header), self.oidc.owner_claim)
        raise NotAuthenticated(f"Tokens signed with {algorithm!r} are not accepted here.",
                               code="invalid_token")


def owner_from_token(secret: bytes, token: str) -> str:
    """The owner id a valid HS256 token names; NotAuthenticated says why otherwise."""
    return TokenVerifier(secret).verify(token).owner


def _names_algorithm(token: str, algorithm: str) -> bool:
    """Whether the token's header says `algorithm`: read only to choose the keys that
    verify it (a header that does not read takes the slow path, for PyJWT's reason)."""
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError among them
        return False
    return isinstance(header, dict) and header.get("alg") == algorithm


def _shared_secret_claims(secret: bytes, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"]},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("The token has expired.", code="token_expired") from None
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated(f"The token is not valid: {exc}.", code="invalid_token") from None
    return claims


def _identity(claims: dict[str, Any], owner_claim: str) -> Identity:
    """The owner and expiry of verified claims, within the limits every token keeps."""
    subject = claims.get(owner_claim)
    if not isinstance(subject, str) or not subject.strip():
        raise NotAuthenticated("The token names no user.", code="invalid_token")
    if problem := _subject_problem(subject):
        raise NotAuthenticated(f"The token's {owner_claim} {problem}.", code="invalid_token")
    expires = claims["exp"]
    latest = clock.now().timestamp() + MAX_TOKEN_SECONDS + LEEWAY_SECONDS
    if not isinstance(expires, int | float) or expires > latest:
        raise NotAuthenticated("The token's exp is too far away: tokens may live at most "
                               "30 days.", code="invalid_token")
    return Identity(subject, datetime.fromtimestamp(int(expires), UTC))


def _subject_problem(subject: str) -> str | None:
    """Why a user id cannot own uploads, or None."""
    if len(subject) > MAX_SUBJECT_LENGTH:
        return f"is longer than {MAX_SUBJECT_LENGTH} characters"
    if not subject.isprintable():
        return "contains control characters"
    return None


def bearer_token(header: str | None) -> str:
    """The token from an `Authorization: Bearer …` header."""
    if not header:
        raise NotAuthenticated("Send 'Authorization: Bearer <token>'.", code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("The Authorization header must be 'Bearer <token>'.",
                               code="invalid_token")
    return token.strip()
