"""Logging in and out, who am I, and the admins' pages: users, API tokens, the audit log."""

from __future__ import annotations

import re
import time
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .api_common import JSONBody, audit, service, validate_model, with_iso
from .auth import (
    SESSION_COOKIE,
    Admin,
    User,
    clear_session_cookies,
    client_ip,
    hash_password,
    new_session,
    new_token,
    password_problem,
    set_session_cookies,
    sha256_hex,
    verify_password,
)
from .config import CAMERA_ID

router = APIRouter()
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TIMES = ("created_at", "updated_at", "last_used", "last_used_at", "revoked_at", "expires_at", "time", "at")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)


class UserIn(_In):
    username: str
    password: str
    role: Literal["admin", "staff"] = "staff"


class UserPatch(_In):
    password: Optional[str] = None
    role: Optional[Literal["admin", "staff"]] = None
    disabled: Optional[bool] = None


class TokenIn(_In):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["worker", "integration", "admin", "staff"] = "worker"
    # A worker token's scope: the site its cameras belong to (cameras it brings are registered
    # there) and/or the camera ids it may write. Left out: any camera (the tokens of old).
    site: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
    cameras: Optional[list[Annotated[str, Field(pattern=CAMERA_ID)]]] = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _scope_is_for_workers(self) -> "TokenIn":
        if self.role != "worker" and (self.site is not None or self.cameras is not None):
            raise ValueError(f"site and cameras scope worker tokens only (this one is {self.role})")
        return self


@router.post("/api/login", tags=["auth"])
def login(request: Request, response: Response, body: LoginIn) -> dict:
    """Log in with a username and password: sets the session cookie; answers the CSRF token to send
    as ``X-CSRF-Token`` with every state-changing request."""
    app, svc, ip = request.app, service(request), client_ip(request)
    wait = app.state.limiter.retry_after(ip, body.username)
    if wait:
        raise HTTPException(429, f"too many failed logins: try again in {wait} s", headers={"Retry-After": str(wait)})
    row = svc.store.get_user(body.username, with_hash=True)
    ok = verify_password(row.get("password_hash") if row else None, body.password)
    if not ok or row.get("disabled"):
        app.state.limiter.failed(ip, body.username)
        # an unknown name is not recorded: it may be a password typed into the wrong field
        who = row["username"] if row else "(unknown user)"
        audit(request, "login.failed", who, actor=who)
        raise HTTPException(401, "wrong username or password")
    app.state.limiter.succeeded(ip, body.username)
    sid, sid_hash = new_session()
    max_age = int(svc.config.server.session_hours * 3600)
    svc.store.add_session(sid_hash, row["username"], time.time() + max_age)
    csrf = set_session_cookies(response, request, sid, max_age, secure=app.state.secure_cookies)
    audit(request, "login", row["username"], actor=row["username"])
    return {"user": {"username": row["username"], "role": row["role"]}, "csrf": csrf}


@router.post("/api/logout", tags=["auth"])
def logout(request: Request, who: User, response: Response) -> dict:
    sid = request.cookies.get(SESSION_COOKIE)
    if who.via == "session" and sid:
        service(request).store.delete_session(sha256_hex(sid))
    clear_session_cookies(response)
    audit(request, "logout", who.name)
    return {"ok": True}


@router.get("/api/me", tags=["auth"])
def me(request: Request, who: User) -> dict:
    cfg = service(request).config
    return {**who.to_json(), "aggregate_only": cfg.privacy.aggregate_only, "bucket_seconds": cfg.server.bucket_seconds}


# --- users (admins) ---------------------------------------------------------------------------


def _public_user(row: dict) -> dict:
    return with_iso({k: v for k, v in row.items() if "hash" not in k}, _TIMES)


def _other_admins(request: Request, username: str) -> int:
    return sum(1 for u in service(request).store.list_users() if u["role"] == "admin" and not u.get("disabled") and u["username"] != username)


@router.get("/api/users", tags=["users"])
def list_users(request: Request, _: Admin) -> list[dict]:
    return [_public_user(u) for u in service(request).store.list_users()]


@router.post("/api/users", tags=["users"], status_code=201)
def add_user(request: Request, who: Admin, body: JSONBody) -> dict:
    new = validate_model(UserIn, body, "user")
    if not _USERNAME.match(new.username):
        raise HTTPException(422, "user: username: use 1-64 letters, digits, '.', '_', '@' and '-', starting with a letter or digit")
    problem = password_problem(new.password)
    if problem:
        raise HTTPException(422, f"user: {problem}")
    store = service(request).store
    if store.get_user(new.username) is not None:
        raise HTTPException(409, f"user '{new.username}' exists")
    row = store.add_user(new.username, hash_password(new.password), new.role)
    audit(request, "user.add", new.username, {"role": new.role})
    return _public_user(row)


@router.put("/api/users/{username}", tags=["users"])
def update_user(request: Request, who: Admin, username: str, body: JSONBody) -> dict:
    patch = validate_model(UserPatch, body, "user")
    store = service(request).store
    if store.get_user(username) is None:
        raise HTTPException(404, f"unknown user '{username}'")
    if patch.disabled and username == who.name:
        raise HTTPException(409, "you cannot disable yourself")
    if (patch.role == "staff" or patch.disabled) and not _other_admins(request, username) and store.get_user(username)["role"] == "admin":
        raise HTTPException(409, "this is the last admin: make another admin first")
    pw_hash = None
    if patch.password is not None:
        problem = password_problem(patch.password)
        if problem:
            raise HTTPException(422, f"user: {problem}")
        pw_hash = hash_password(patch.password)
    row = store.update_user(username, password_hash=pw_hash, role=patch.role, disabled=patch.disabled)
    changed = sorted(k for k, v in patch.model_dump().items() if v is not None)
    audit(request, "user.update", username, {"changed": changed})
    return _public_user(row)


@router.delete("/api/users/{username}", tags=["users"])
def delete_user(request: Request, who: Admin, username: str) -> dict:
    store = service(request).store
    row = store.get_user(username)
    if row is None:
        raise HTTPException(404, f"unknown user '{username}'")
    if username == who.name:
        raise HTTPException(409, "you cannot delete yourself")
    if row["role"] == "admin" and not _other_admins(request, username):
        raise HTTPException(409, "this is the last admin: make another admin first")
    store.delete_user(username)
    audit(request, "user.delete", username)
    return {"deleted": username}


# --- API tokens (admins) ----------------------------------------------------------------------


@router.get("/api/tokens", tags=["tokens"])
def list_tokens(request: Request, _: Admin) -> list[dict]:
    return [_public_user(t) for t in service(request).store.list_tokens()]


@router.post("/api/tokens", tags=["tokens"], status_code=201)
def add_token(request: Request, who: Admin, body: JSONBody) -> dict:
    """A new token: its value is in this answer only (the server keeps its hash)."""
    new = validate_model(TokenIn, body, "token")
    token, token_hash = new_token()
    row = service(request).store.add_token(new.name, token_hash, new.role, who.name, site=new.site, cameras=new.cameras)
    audit(request, "token.add", new.name, {"role": new.role, "id": row.get("id"), "site": new.site, "cameras": row["cameras"]})
    return {**_public_user(row), "token": token}


@router.delete("/api/tokens/{token_id}", tags=["tokens"])
def revoke_token(request: Request, who: Admin, token_id: int) -> dict:
    if not service(request).store.revoke_token(token_id):
        raise HTTPException(404, f"unknown token {token_id}")
    audit(request, "token.revoke", str(token_id))
    return {"revoked": token_id}


@router.get("/api/audit", tags=["users"])
def list_audit(request: Request, _: Admin, limit: int = 200) -> list[dict]:
    limit = max(1, min(limit, 5000))
    return [with_iso(r, _TIMES) for r in service(request).store.list_audit(limit)]
