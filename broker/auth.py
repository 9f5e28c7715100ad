"""Bearer tokens: HS256 JWTs whose `sub` is the owner of the uploads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from broker import clock
from broker.errors import NotAuthenticated

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30


def issue_token(secret: bytes, subject: str, ttl_seconds: int) -> str:
    """A token for `subject`, valid for `ttl_seconds`."""
    if not subject.strip():
        raise ValueError("a token needs a non-empty user id")
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
    return Identity(subject, datetime.fromtimestamp(int(claims["exp"]), UTC))


def bearer_token(header: str | None) -> str:
    """The token from an `Authorization: Bearer …` header."""
    if not header:
        raise NotAuthenticated("Send 'Authorization: Bearer <token>'.", code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("The Authorization header must be 'Bearer <token>'.",
                               code="invalid_token")
    return token.strip()
