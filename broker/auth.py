"""Bearer tokens: HS256 JWTs whose `sub` is the owner of the uploads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from broker import clock
from broker.errors import NotAuthenticated

ALGORITHM = "HS256"
# Tolerated clock difference between whoever signs tokens and us, on exp, nbf and iat.
LEEWAY_SECONDS = 30
# A token that claims to live longer is refused: no credential should be valid for years.
MAX_TOKEN_SECONDS = 30 * 24 * 3600
# OpenID Connect's limit for a subject identifier; owner ids are keys in the records.
MAX_SUBJECT_LENGTH = 255


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


def owner_from_token(secret: bytes, token: str) -> str:
    """The owner id a valid token names; NotAuthenticated says why otherwise."""
    return verify_token(secret, token).owner


def verify_token(secret: bytes, token: str) -> Identity:
    """Check a token's signature, algorithm and expiry; NotAuthenticated says why not."""
    try:
        claims = jwt.decode(
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
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject.strip():
        raise NotAuthenticated("The token names no user.", code="invalid_token")
    if problem := _subject_problem(subject):
        raise NotAuthenticated(f"The token's sub {problem}.", code="invalid_token")
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
