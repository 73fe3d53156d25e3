"""Who is asking: passwords, API tokens, session cookies, login rate limits, and the FastAPI
dependencies that guard every route.

Nothing secret is kept in the clear: passwords are argon2 hashes, tokens and session ids are kept
as their SHA-256 (they are long random strings, so a fast hash is enough; a token is shown once,
when it is made). A browser session is a random id in an HttpOnly, SameSite=Strict cookie; a
state-changing request made with it must echo the CSRF token (a second, readable cookie) in the
``X-CSRF-Token`` header, which another site's page cannot read or set. Bearer tokens need no CSRF
token: a browser never sends them on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request, Response

log = logging.getLogger(__name__)

#: Roles that may read the service's data and act on alerts (an integration: Home Assistant, Grafana).
READER_ROLES = frozenset({"admin", "staff", "integration"})

SESSION_COOKIE = "lrfer_session"
CSRF_COOKIE = "lrfer_csrf"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "lrf_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_PASSWORD = 8

# argon2id with the library's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes): ~0.1 s a login.
_HASHER = PasswordHasher()
# Verified against when the user does not exist, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: Optional[str], password: str) -> bool:
    """True when ``password`` matches; constant work whether or not the user exists."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A new API token and the hash the store keeps: ``(token, sha256 hex)``."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def new_session() -> tuple[str, str]:
    """A new session id (the cookie's value) and the hash the store keeps."""
    sid = secrets.token_urlsafe(32)
    return sid, sha256_hex(sid)


def csrf_for(session_id: str) -> str:
    """The session's CSRF token: derived from the session id, which no script can read (HttpOnly)."""
    return hashlib.sha256(b"lrfer-csrf:" + session_id.encode("utf-8")).hexdigest()[:32]


def password_problem(password: str) -> Optional[str]:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"password: too short (at least {MIN_PASSWORD} characters)"
    if len(password) > 1024:
        return "password: too long (at most 1024 characters)"
    return None


@dataclass(frozen=True)
class Principal:
    """The one making a request: a user (by session cookie or token) or a token's holder."""

    name: str  # the username, or "token:<name>"
    role: str
    via: str  # "session" | "token"
    token_id: Optional[int] = None
    # A worker token's scope (None: not limited that way). A worker machine stands in another
    # building: a token stolen there must not write another site's cameras.
    site: Optional[str] = None
    cameras: Optional[frozenset[str]] = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_write(self, camera_id: str, camera_site: Optional[str]) -> bool:
        """Whether this principal may push data of ``camera_id``; ``camera_site`` is the site the
        server keeps the camera under, None for a camera it has not seen (which a site-scoped token
        may bring: it is registered under the token's site)."""
        if self.cameras is not None and camera_id not in self.cameras:
            return False
        return self.site is None or camera_site is None or camera_site == self.site

    def scope_text(self) -> str:
        """The scope in words, for messages: "site 'b' and cameras x, y", or "any camera"."""
        parts = ([f"site '{self.site}'"] if self.site is not None else []) + ([f"cameras {', '.join(sorted(self.cameras))}"] if self.cameras is not None else [])
        return " and ".join(parts) or "any camera"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "via": self.via}


class LoginLimiter:
    """At most ``max_failures`` failed logins per IP and per username in ``window`` seconds.

    In memory (one process serves the API) and bounded: at most ``max_keys`` keys are tracked, the
    least recently failed forgotten first.
    """

    def __init__(self, max_failures: int = 5, window: float = 300.0, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window, self.max_keys, self.clock = max_failures, window, max_keys, clock
        self._fails: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(ip: str, username: str) -> tuple[str, str]:
        return f"ip:{ip}", f"user:{username.strip().lower()}"

    def _recent(self, key: str, now: float) -> deque:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def retry_after(self, ip: str, username: str) -> int:
        """Seconds until this IP and username may try again (0: now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(ip, username):
                q = self._recent(key, now)
                if len(q) >= self.max_failures:
                    wait = max(wait, q[-self.max_failures] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, ip: str, username: str) -> None:
        now = self.clock()
        with self._lock:
            for key in self._keys(ip, username):
                q = self._fails.pop(key, None) or deque(maxlen=self.max_failures)
                q.append(now)
                self._fails[key] = q  # most recent last
            while len(self._fails) > self.max_keys:
                self._fails.popitem(last=False)

    def succeeded(self, ip: str, username: str) -> None:
        with self._lock:
            self._fails.pop(self._keys(ip, username)[1], None)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def is_https(request: Request, force: bool = False) -> bool:
    """Whether the session cookie gets ``Secure``: the request came over https (uvicorn's
    ``--proxy-headers`` turns a reverse proxy's X-Forwarded-Proto into the scheme), or ``force``."""
    return force or request.url.scheme == "https"


def set_session_cookies(response: Response, request: Request, session_id: str, max_age: int, *, secure: bool = False) -> str:
    """Set the session and CSRF cookies; the CSRF token (also returned to the login's caller)."""
    csrf = csrf_for(session_id)
    sec = is_https(request, secure)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=max_age, httponly=True, samesite="strict", secure=sec, path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="strict", secure=sec, path="/")
    return csrf


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


def _bearer(request: Request) -> Optional[str]:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(request: Request) -> Optional[Principal]:
    """The request's principal (bearer token first, then the session cookie), or None."""
    store = request.app.state.service.store
    token = _bearer(request)
    if token is not None:
        row = store.find_token(sha256_hex(token))
        if row is None:
            return None
        cameras = frozenset(row["cameras"]) if row.get("cameras") is not None else None
        return Principal(f"token:{row['name']}", row["role"], "token", row.get("id"), site=row.get("site"), cameras=cameras)
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    user = store.find_session(sha256_hex(sid), time.time())
    if user is None:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode("utf-8"), csrf_for(sid).encode("utf-8")):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (send the {CSRF_COOKIE} cookie's value)")
    return Principal(user["username"], user["role"], "session")


def _require(request: Request, roles: frozenset[str], what: str) -> Principal:
    principal = authenticate(request)
    if principal is None:
        raise HTTPException(401, "not logged in: log in, or send an API token as 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
    if principal.role not in roles:
        raise HTTPException(403, f"{what} only (you are {principal.role})")
    request.state.principal = principal
    return principal


def require_user(request: Request) -> Principal:
    """Anyone who may read the service's data: admin, staff, or an integration token."""
    return _require(request, READER_ROLES, "users")


def require_admin(request: Request) -> Principal:
    return _require(request, frozenset({"admin"}), "admins")


def require_worker(request: Request) -> Principal:
    """A remote camera worker's token (``lrfer worker --token``)."""
    return _require(request, frozenset({"worker"}), "worker tokens")


#: Route parameters: ``who: User`` (a reader), ``who: Admin``, ``who: Worker``.
User = Annotated[Principal, Depends(require_user)]
Admin = Annotated[Principal, Depends(require_admin)]
Worker = Annotated[Principal, Depends(require_worker)]
