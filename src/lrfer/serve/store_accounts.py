"""The Store's people-side tables: alerts and their lifecycle, users, API tokens, sessions, audit.

Only hashes of passwords, tokens and session ids are stored (``auth.py`` makes them); no method
returns a hash unless asked (``get_user(..., with_hash=True)``, for the login check).
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .config import Retention
from .records import ALERT_VERDICTS, TOKEN_ROLES, USER_ROLES, AlertEvent
from .schema import alerts, audit, batches, sessions, tokens, users


def loads(text: Optional[str]) -> Any:
    return json.loads(text) if text else None


def batch_seen(conn: Connection, batch_id: str, n: int) -> bool:
    """True when this ingest batch is already stored; else records it (in the caller's transaction,
    so a failed batch is not marked as stored)."""
    if conn.execute(sa.select(batches.c.batch_id).where(batches.c.batch_id == batch_id)).first():
        return True
    conn.execute(sa.insert(batches).values(batch_id=batch_id, received_at=time.time(), observations=n))
    return False


def _alert(row) -> dict:
    d = dict(row)
    d["evidence"] = loads(d["evidence"]) or {}
    return d


def _annotate(conn: Connection, alert_id: int, note: str, verdict: Optional[str]) -> None:
    """A note replaces the last one; a verdict, once given, can be changed but not taken back."""
    if verdict is not None and verdict not in ALERT_VERDICTS:
        raise ValueError(f"verdict must be one of {ALERT_VERDICTS}")
    values = {k: v for k, v in (("note", note), ("verdict", verdict)) if v}
    if values:
        conn.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(**values))


def _user(row) -> dict:
    return {k: row[k] for k in ("id", "username", "role", "disabled", "created_at")}


def _token(row) -> dict:
    """A token row without its hash, its camera list decoded (None: any camera)."""
    d = {k: v for k, v in row.items() if k != "token_hash"}
    d["cameras"] = loads(d.get("cameras"))
    return d


class Accounts:
    """Mixed into :class:`~lrfer.serve.store.Store` (which provides ``engine``)."""

    engine: Engine

    # ------------------------------------------------------------------------------ alerts
    def add_alert(self, event: AlertEvent) -> dict:
        values = {**event.to_json(), "state": "open", "evidence": json.dumps(event.evidence, default=float)}
        with self.engine.begin() as conn:
            aid = conn.execute(sa.insert(alerts).values(**values)).inserted_primary_key[0]
        return self.get_alert(aid)

    def get_alert(self, alert_id: int) -> Optional[dict]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).mappings().first()
        return _alert(row) if row else None

    def list_alerts(self, state: Optional[str] = None, camera_id: Optional[str] = None, limit: int = 100) -> list[dict]:
        q = sa.select(alerts).order_by(alerts.c.opened_at.desc(), alerts.c.id.desc()).limit(limit)
        if state:
            q = q.where(alerts.c.state == state)
        if camera_id:
            q = q.where(alerts.c.camera_id == camera_id)
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(q).mappings()]

    def acknowledge_alert(self, alert_id: int, user: str, note: str = "", verdict: Optional[str] = None) -> Optional[dict]:
        """open -> acknowledged (an acknowledged or resolved alert keeps its state; the note and the verdict are added)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == "open")
                .values(state="acknowledged", acknowledged_by=user, acknowledged_at=time.time())
            )
            _annotate(conn, alert_id, note, verdict)
        return self.get_alert(alert_id)

    def resolve_alert(self, alert_id: int, user: str, note: str = "", verdict: Optional[str] = None) -> Optional[dict]:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(alerts).where(alerts.c.id == alert_id, alerts.c.state != "resolved").values(state="resolved", resolved_by=user, resolved_at=time.time())
            )
            _annotate(conn, alert_id, note, verdict)
        return self.get_alert(alert_id)

    def due_reminders(self, now: float, minutes: float, times: int) -> list[dict]:
        """Open alerts last sent (opened or reminded) at least ``minutes`` ago, reminded fewer than ``times`` times."""
        last = sa.func.coalesce(alerts.c.reminded_at, alerts.c.opened_at)
        q = (sa.select(alerts).where(alerts.c.state == "open", alerts.c.reminders < times, last <= now - 60.0 * minutes)
             .order_by(alerts.c.opened_at))  # fmt: skip
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(q).mappings()]

    def mark_reminded(self, alert: dict, now: float) -> Optional[dict]:
        """Count one more reminder of ``alert`` (as read by :meth:`due_reminders`); None when it
        changed meanwhile (acknowledged, or reminded by another process): then nothing is sent."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == alert["id"], alerts.c.state == "open", alerts.c.reminders == alert["reminders"])
                .values(reminders=alert["reminders"] + 1, reminded_at=now)
            ).rowcount
        return self.get_alert(alert["id"]) if done else None

    def alert_verdicts(self, since: float, camera_id: Optional[str] = None) -> list[dict]:
        """Alerts opened since ``since``, counted per camera, rule and verdict (None: not judged)."""
        q = (sa.select(alerts.c.camera_id, alerts.c.rule, alerts.c.verdict, sa.func.count().label("n"))
             .where(alerts.c.opened_at >= since).group_by(alerts.c.camera_id, alerts.c.rule, alerts.c.verdict))  # fmt: skip
        if camera_id:
            q = q.where(alerts.c.camera_id == camera_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # ------------------------------------------------------------------------------- users
    def add_user(self, username: str, password_hash: str, role: str) -> dict:
        if role not in USER_ROLES:
            raise ValueError(f"role must be one of {USER_ROLES}")
        with self.engine.begin() as conn:
            conn.execute(sa.insert(users).values(username=username, password_hash=password_hash, role=role, disabled=False, created_at=time.time()))
        return self.get_user(username)

    def get_user(self, username: str, *, with_hash: bool = False) -> Optional[dict]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        if row is None:
            return None
        return {**_user(row), "password_hash": row["password_hash"]} if with_hash else _user(row)

    def list_users(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.username)).mappings()]

    def update_user(self, username: str, *, password_hash: Optional[str] = None, role: Optional[str] = None, disabled: Optional[bool] = None) -> Optional[dict]:
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if role is not None:
            if role not in USER_ROLES:
                raise ValueError(f"role must be one of {USER_ROLES}")
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        with self.engine.begin() as conn:
            if values:
                conn.execute(sa.update(users).where(users.c.username == username).values(**values))
            if password_hash is not None or disabled:
                conn.execute(sa.delete(sessions).where(sessions.c.username == username))  # a new password or a disabled account ends every session
        return self.get_user(username)

    def delete_user(self, username: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.username == username))
            return bool(conn.execute(sa.delete(users).where(users.c.username == username)).rowcount)

    def count_users(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar())

    # ------------------------------------------------------------------------------ tokens
    def add_token(
        self, name: str, token_hash: str, role: str, created_by: str, *, site: Optional[str] = None, cameras: Optional[list[str]] = None
    ) -> dict:
        """A token; ``site`` and ``cameras`` scope a worker token (None: unscoped)."""
        if role not in TOKEN_ROLES:
            raise ValueError(f"role must be one of {TOKEN_ROLES}")
        if role != "worker" and (site is not None or cameras is not None):
            raise ValueError("only worker tokens have a scope")
        scope = {"site": site, "cameras": json.dumps(sorted(set(cameras))) if cameras is not None else None}
        with self.engine.begin() as conn:
            tid = conn.execute(
                sa.insert(tokens).values(name=name, token_hash=token_hash, role=role, created_by=created_by, created_at=time.time(), **scope)
            ).inserted_primary_key[0]
        return next(t for t in self.list_tokens() if t["id"] == tid)

    def find_token(self, token_hash: str) -> Optional[dict]:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(tokens).where(tokens.c.token_hash == token_hash, tokens.c.revoked_at.is_(None))).mappings().first()
            if row is None:
                return None
            conn.execute(sa.update(tokens).where(tokens.c.id == row["id"]).values(last_used=time.time()))
        return _token(row)

    def list_tokens(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tokens).order_by(tokens.c.id)).mappings().all()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: int) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.update(tokens).where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None)).values(revoked_at=time.time())).rowcount)

    # ---------------------------------------------------------------------------- sessions
    def add_session(self, session_hash: str, username: str, expires_at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(sessions).values(session_hash=session_hash, username=username, created_at=time.time(), expires_at=expires_at))

    def find_session(self, session_hash: str, now: float) -> Optional[dict]:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).join(sessions, sessions.c.username == users.c.username).where(sessions.c.session_hash == session_hash, sessions.c.expires_at > now)
            ).mappings().first()
        if row is None or row["disabled"]:
            return None
        return _user(row)

    def delete_session(self, session_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sessions).where(sessions.c.session_hash == session_hash))

    # ------------------------------------------------------------------------------- audit
    def audit(self, actor: str, action: str, target: str = "", detail: Optional[dict] = None, ip: str = "") -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(audit).values(at=time.time(), actor=actor, action=action, target=target[:255], detail=json.dumps(detail or {}, default=str), ip=ip))

    def list_audit(self, limit: int = 200) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(audit).order_by(audit.c.id.desc()).limit(limit)).mappings().all()
        return [{**dict(r), "detail": loads(r["detail"]) or {}} for r in rows]

    def purge_accounts(self, now: float, retention: Retention) -> dict:
        with self.engine.begin() as conn:
            n_alerts = conn.execute(sa.delete(alerts).where(alerts.c.opened_at < now - retention.alert_days * 86400)).rowcount
            n_audit = conn.execute(sa.delete(audit).where(audit.c.at < now - retention.audit_days * 86400)).rowcount
            conn.execute(sa.delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(sa.delete(batches).where(batches.c.received_at < now - retention.days * 86400))
        return {"alerts": n_alerts, "audit": n_audit}
