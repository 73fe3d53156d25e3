"""``lrfer serve`` (the monitoring service) and ``lrfer worker`` (its cameras on another machine)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from ..errors import LrferError


def add_parsers(sub) -> None:
    p = sub.add_parser("serve", help="watch cameras, keep mood timelines, raise alerts; API and dashboard")
    p.add_argument("--config", help="TOML file: cameras, zones, masks, rules, retention, integrations (docs/serve.md)")
    p.add_argument("--db", help="database URL (default: SQLite in the data folder); e.g. postgresql+psycopg://lrfer@localhost/lrfer")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; another needs server.allow_remote)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--data-dir", help="folder for the SQLite database (default lrfer-data; lrfer-demo with --demo)")
    p.add_argument("--demo", action="store_true", help="no setup: the bundled video as a looping camera, SQLite, an admin account")
    p.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="run cameras here and push their observations to a distant `lrfer serve`")
    w.add_argument("--server", required=True, help="the service's URL, e.g. https://lrfer.example.org")
    w.add_argument("--token", required=True, help="a worker token (Settings > API tokens on the dashboard)")
    w.add_argument("--camera", action="append", default=[], metavar="ID=URL", help="a camera: id=rtsp://..., id=file.mp4 or id=webcam:0 (repeat)")
    w.add_argument("--config", help="TOML file whose [[cameras]] to run (instead of or beside --camera)")
    w.add_argument("--spool", default="lrfer-spool", help="folder that buffers observations while the server is unreachable")
    w.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate (testing only)")
    w.set_defaults(func=cmd_worker)


def _config(args):
    from ..serve.config import load_config
    from ..serve.runner import demo_config

    if args.demo and args.config:
        raise LrferError("--demo and --config exclude each other", "use one: --demo needs no config")
    cfg = demo_config(args.data_dir or "lrfer-demo") if args.demo else load_config(args.config)
    for key in ("db", "host", "port", "data_dir"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg.server, key, value)
    return cfg


def cmd_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..serve.runner import serve

    try:
        cfg = _config(args)
    except ValidationError as err:  # an override such as --port 99999
        raise LrferError(f"bad option: {err.errors()[0]['loc'][-1]}: {err.errors()[0]['msg']}", "see lrfer serve --help") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    def on_event(kind: str, text: str) -> None:
        if kind == "password":
            print(f"created user 'admin' with password: {text}  (shown once; change it under Settings)", flush=True)
        elif kind == "url":
            print(f"lrfer serve: open {text} (Ctrl-C to stop)", flush=True)

    serve(cfg, on_event=on_event)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..serve.config import Camera, load_config, one_line
    from ..serve.remote import run_worker

    cfg = load_config(args.config)  # None: every default
    cameras = list(cfg.cameras)
    for spec in args.camera:
        cid, sep, url = spec.partition("=")
        if not sep or not url:
            raise LrferError(f"--camera {spec!r} is not ID=URL", "e.g. --camera lounge=rtsp://10.0.0.5/stream")
        try:
            cameras.append(Camera(id=cid, url=url))
        except ValidationError as err:
            raise one_line(err, f"--camera {spec}") from None
    if not cameras:
        raise LrferError("no cameras to run", "give --camera ID=URL or --config with [[cameras]]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # systemd's stop: the cameras flush, the spool is pushed once more
    run_worker(
        args.server, args.token, cameras, spool_dir=args.spool, verify=not args.insecure,
        model=cfg.model, evidence=cfg.evidence, bucket_seconds=cfg.server.bucket_seconds, stop=stop,
    )
    return 0
