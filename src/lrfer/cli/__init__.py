"""The ``lrfer`` command line: a thin layer over the library.

Each subcommand parses its flags, calls one library function, and prints the result. :func:`main`
is the one place that turns every :class:`~lrfer.errors.LrferError` into one line on stderr and
exit code 2 (``--debug`` shows the traceback instead), and Ctrl-C into exit code 130.

One module per command group, each with its ``cmd_*`` functions and an ``add_parsers`` that
declares the group's commands and options: :mod:`.train`, :mod:`.evaluate`, :mod:`.infer`,
:mod:`.batch`, :mod:`.export`, :mod:`.serve` and :mod:`.info`; :mod:`._common` holds what they share. The ``cmd_*`` functions
import the library modules they call inside themselves, on purpose: the command line is the top
layer, so nothing imports it back, and PyTorch, which takes seconds to import, is then only
imported by the commands that need it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from ..errors import LrferError
from . import batch, evaluate, export, infer, info, serve, train
from ._common import OneLineParser, parse_key_values

__all__ = ["build_parser", "main", "parse_key_values"]

#: Packages of the extras (pyproject.toml) that a command may import when it runs: a command whose
#: package is missing says which extra brings it, instead of a traceback.
_EXTRA_OF = {
    **dict.fromkeys(("torch", "torchvision", "safetensors", "matplotlib", "onnx"), "train"),
    **dict.fromkeys(("ray", "pyarrow"), "batch"),
    **dict.fromkeys(("fastapi", "uvicorn", "sqlalchemy", "alembic", "pydantic", "psycopg", "argon2", "httpx", "prometheus_client", "paho"), "serve"),
}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="lrfer", description="Facial expression recognition for low-resolution faces.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (train, evaluate, infer, batch, export, serve, info):  # the order of `lrfer --help`
        group.add_parsers(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0), or a bad argument, already said in one line (2)
        return int(done.code or 0)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("lrfer: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        line, code = _one_line(args.command, err)
        print(line, file=sys.stderr)
        return code


def _one_line(command: str, err: Exception) -> tuple[str, int]:
    """The one line and exit code for an error: bad input (LrferError) or a missing extra exit 2;
    anything else is a bug, said in one line too (``--debug`` shows its traceback)."""
    if isinstance(err, LrferError):
        return f"lrfer: error: {err}", 2
    extra = _EXTRA_OF.get((getattr(err, "name", None) or "").split(".")[0]) if isinstance(err, ModuleNotFoundError) else None
    if extra is not None:
        return f"lrfer: error: `lrfer {command}` needs {err.name}, which is not installed; install it with: pip install 'lrfer[{extra}]'", 2
    first = (str(err).splitlines() or [""])[0][:300]
    return f"lrfer: internal error: {type(err).__name__}: {first} (a bug: please report it with the output of the same command and --debug)", 1
