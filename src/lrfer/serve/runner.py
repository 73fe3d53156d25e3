"""``lrfer serve``: the service and its HTTP server in one process, until SIGTERM or Ctrl-C.

The first start of a database with no users creates an ``admin`` account with a random password,
handed to ``on_event`` once (the CLI prints it; it is never logged or stored in clear). A host
other than loopback is refused unless ``server.allow_remote`` is set and an admin exists: the
service must never be open to a network before someone can log in to it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from ..errors import LrferError
from .app import create_app, make_server
from .auth import hash_password
from .config import Camera, Rule, ServeConfig
from .service import Service
from .store import Store

log = logging.getLogger(__name__)

DEMO_VIDEO = Path(__file__).resolve().parent.parent / "assets" / "demo" / "lounge.mp4"


def demo_config(data_dir: str = "lrfer-demo") -> ServeConfig:
    """The bundled looping video as the one camera, SQLite in ``data_dir``, and beside the distress
    rule a demo rule on smiles: the demo's faces smile, and staff should see an alert's whole life."""
    cfg = ServeConfig()
    cfg.server.data_dir = data_dir
    cfg.cameras = [Camera(id="lounge", name="Lounge (demo video)", url=str(DEMO_VIDEO), loop=True, fps=2.0)]
    demo_rule = Rule(name="demo-smile", method="window", expressions=["happy"], threshold=0.5, minutes=0.5, min_observations=4, baseline="none", cooldown_minutes=10)
    cfg.rules = [Rule(), demo_rule]
    return cfg


def first_admin(store: Store) -> Optional[str]:
    """A new database's admin password (None when users exist)."""
    if store.count_users():
        return None
    password = secrets.token_urlsafe(12)
    store.add_user("admin", hash_password(password), "admin")
    store.audit("lrfer", "user.create", "admin", {"role": "admin", "why": "first start"})
    return password


def check_exposure(config: ServeConfig, store: Store) -> None:
    s = config.server
    if s.loopback:
        return
    if not s.allow_remote:
        raise LrferError(
            f"refusing to listen on {s.host}: the service would be reachable from the network",
            "set [server] allow_remote = true once admin users with strong passwords exist, and put it behind TLS (docs/serve.md)",
        )
    if not any(u["role"] == "admin" and not u["disabled"] for u in store.list_users()):
        raise LrferError(f"refusing to listen on {s.host} with no admin user", "start it once on 127.0.0.1 to create the admin account")


def serve(config: ServeConfig, *, on_event: Callable[[str, str], None] = lambda kind, text: None, speed: float = 1.0) -> None:
    """Run until SIGTERM/SIGINT; then stop cleanly (workers flush, the recorder writes its queue)."""
    service = Service(config, speed=speed)
    try:
        password = first_admin(service.store)
        if password is not None:
            on_event("password", password)
        check_exposure(config, service.store)
        service.start()
        app = create_app(service)
        # make_server's exit closes the live event streams first: uvicorn waits for open responses,
        # and a dashboard's SSE stream never ends by itself.
        server = make_server(app, host=config.server.host, port=config.server.port, access_log=False)
        on_event("url", f"http://{_host(config.server.host)}:{config.server.port}/")
        server.run()  # handles SIGTERM and SIGINT: returns once the open requests are done
    finally:
        service.stop()


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
