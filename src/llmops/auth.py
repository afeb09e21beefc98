"""Sign-in: password hashes, the users of a workspace and the HTTP `Authorization` header.

The user `admin` signs in with the workspace's admin token (.llmops/admin_token); more users are listed in the
`auth.users` settings as `scrypt$<n>$<r>$<p>$<salt>$<hash>` strings (salt and hash in base64), written by
`llmops auth add-user`. Every comparison of secrets is constant-time and never raises, whatever the bytes.
Password sign-ins (the UI's login, HTTP Basic) go through a `SignInLimiter`: after too many failures a user is
refused for a cooldown without a password check.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from llmops.errors import LLMOpsError
from llmops.fileio import write_text_atomic
from llmops.settings import parse_settings, read_settings_file
from llmops.workspace import Workspace

ADMIN_USER = "admin"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # the usual interactive-login cost: 16 MiB, ~50 ms
_KEY_BYTES = 32
_MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
FAILURE_WINDOW_S = 60.0
MAX_COOLDOWN_FACTOR = 16


@dataclass(frozen=True)
class Credentials:
    """What an `Authorization` header carries: a bearer token (user empty) or Basic user and password."""

    scheme: Literal["bearer", "basic"]
    user: str
    secret: str


class TooManyFailures(LLMOpsError):
    """A user is in a sign-in cooldown; `retry_after_s` says for how long."""

    def __init__(self, user: str, retry_after_s: float) -> None:
        self.retry_after_s = max(1, int(retry_after_s + 0.999))
        super().__init__(f"user {user!r}: too many failed sign-ins, try again in {self.retry_after_s} s "
                         "(auth.sign_in_attempts, auth.sign_in_cooldown_s)")


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    lockouts: int = 0
    until: float = 0.0


class SignInLimiter:
    """Failed password sign-ins per user name: `attempts` failures within a minute lock the user out for
    `cooldown_s`, doubling with each further lockout (at most 16×); a successful sign-in resets the user.
    Only users who exist are counted, so the state is bounded by the users of the settings. Thread-safe."""

    def __init__(self, attempts: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.cooldown_s, self.clock = attempts, cooldown_s, clock
        self._users: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def check(self, user: str) -> None:
        """TooManyFailures while `user` is locked out."""
        with self._lock:
            entry, now = self._users.get(user), self.clock()
            if entry is not None and entry.until > now:
                raise TooManyFailures(user, entry.until - now)

    def record(self, user: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._users.pop(user, None)
                return
            entry, now = self._users.setdefault(user, _Failures()), self.clock()
            entry.times = [t for t in entry.times if now - t < FAILURE_WINDOW_S] + [now]
            if len(entry.times) >= self.attempts:
                entry.until = now + self.cooldown_s * min(2**entry.lockouts, MAX_COOLDOWN_FACTOR)
                entry.lockouts += 1
                entry.times = []


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                          maxmem=_MAX_SCRYPT_MEMORY, dklen=_KEY_BYTES)


def hash_password(password: str) -> str:
    """A self-describing scrypt hash of `password` with a random 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches a hash from `hash_password`; a malformed hash matches nothing."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part.isdigit() for part in parts[1:4]):
        return False
    n, r, p = (int(part) for part in parts[1:4])
    try:
        salt, expected = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
        return hmac.compare_digest(_scrypt(password, salt, n, r, p), expected)
    except (binascii.Error, ValueError, MemoryError):
        return False


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two strings of any characters (secrets.compare_digest refuses non-ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def parse_authorization(header: str) -> Credentials | None:
    """`Bearer <token>` or `Basic <base64 user:password>`; anything else, garbled bytes included, is None."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if not value:
        return None
    if scheme.lower() == "bearer":
        return Credentials("bearer", "", value)
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return Credentials("basic", user, password) if sep and user else None


def verify_user(workspace: Workspace, user: str, password: str) -> bool:
    """Whether `user` signs in with `password`: `admin` with the admin token, others with their hash."""
    if user == ADMIN_USER:
        return same_secret(password, workspace.admin_token())
    encoded = workspace.settings.auth.users.get(user)
    return encoded is not None and verify_password(password, encoded)


def sign_in(workspace: Workspace, limiter: SignInLimiter, user: str, password: str) -> bool:
    """`verify_user` behind `limiter`: TooManyFailures, without a password check, while `user` is locked out."""
    limiter.check(user)
    ok = verify_user(workspace, user, password)
    if ok or user in user_names(workspace):
        limiter.record(user, ok)
    return ok


def is_admin_token(workspace: Workspace, header: str) -> bool:
    """Whether an `Authorization` header is `Bearer <the workspace's admin token>`."""
    credentials = parse_authorization(header)
    return (credentials is not None and credentials.scheme == "bearer"
            and same_secret(credentials.secret, workspace.admin_token()))


def signed_in_user(workspace: Workspace, header: str, limiter: SignInLimiter) -> str | None:
    """The user an `Authorization` header signs in (the admin bearer token is `admin`), or None; Basic goes
    through `limiter` (TooManyFailures)."""
    credentials = parse_authorization(header)
    if credentials is None:
        return None
    if credentials.scheme == "bearer":
        return ADMIN_USER if same_secret(credentials.secret, workspace.admin_token()) else None
    return credentials.user if sign_in(workspace, limiter, credentials.user, credentials.secret) else None


def add_user(settings_path: Path, user: str, password: str, replace: bool = False) -> None:
    """Write `user`'s password hash into the settings file (atomically, mode 0600: it now holds hashes)."""
    if not password:
        raise LLMOpsError(f"user {user!r}: the password is empty")
    raw = read_settings_file(settings_path)
    section = raw.setdefault("auth", {})
    users = section.setdefault("users", {}) if isinstance(section, dict) else None
    if not isinstance(users, dict):
        raise LLMOpsError(f"{settings_path}: auth.users: expected a mapping of user name → password hash")
    if user in users and not replace:
        raise LLMOpsError(f"user {user!r}: exists in {settings_path} (pass --replace to change the password)")
    users[user] = hash_password(password)
    parse_settings(raw, str(settings_path))
    write_text_atomic(settings_path, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), mode=0o600)


def user_names(workspace: Workspace) -> list[str]:
    """Who may sign in: `admin` first, then the configured users."""
    return [ADMIN_USER, *workspace.settings.auth.users]
