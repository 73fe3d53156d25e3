"""One fuzz target under atheris (libFuzzer, coverage-guided): ``python -m fuzz.harness TARGET [libFuzzer args]``.

lrfer is imported under atheris's instrumentation, and so are the pure-Python parsers it hands the
bytes to (Pillow's format plugins, tomllib, zipfile, numpy's .npy reader), so coverage of those
guides the mutations too. Native decoders (Pillow's C codecs, the safetensors Rust core) are not
instrumented: a native crash still stops libFuzzer, which saves the input (``fuzz/run.py`` keeps it).

A Python exception outside the contract does not stop the run: the input is saved under
``$LRFER_FUZZ_CRASHES/<target>/<sha1>.bin`` (the first input per distinct error: its type and the
innermost line of lrfer where it came from) and noted in ``$LRFER_FUZZ_LOG``, and fuzzing goes
on, so one bug does not hide the next in a 10-minute run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import traceback
from pathlib import Path

import atheris

INSTRUMENTED = ["lrfer", "fuzz", "PIL", "tomllib", "zipfile", "numpy.lib._format_impl", "numpy.lib._npyio_impl", "json"]


def signature(err: BaseException) -> str:
    """An error's type and the innermost line of project code (or the innermost line) it passed."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/lrfer/" in f.filename or "/fuzz/" in f.filename]
    where = (ours or frames or [None])[-1]
    place = f"{Path(where.filename).name}:{where.lineno}" if where else "?"
    return f"{type(err).__name__} at {place}"


def save_crash(target: str, data: bytes, err: BaseException, folder: Path, log: Path | None) -> Path:
    """The input as ``folder/<target>/<sha1>.bin``, and one JSON line saying what it raised."""
    path = folder / target / (hashlib.sha1(data).hexdigest() + ".bin")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if log is not None:
        first = (str(err).splitlines() or [""])[0][:300]
        with open(log, "a") as f:
            f.write(json.dumps({"target": target, "file": path.name, "kind": "exception",
                                "error": f"{signature(err)}: {first}"}) + "\n")
    return path


def main() -> None:
    target = sys.argv[1]
    with atheris.instrument_imports(include=INSTRUMENTED):
        import zipfile  # noqa: F401

        import numpy.lib._npyio_impl  # noqa: F401 (imported here so that it is instrumented)
        import tomllib  # noqa: F401
        from PIL import Image

        Image.init()  # every format plugin, instrumented

        from fuzz.targets import TARGETS
    run = TARGETS[target]
    folder = Path(os.environ.get("LRFER_FUZZ_CRASHES", "tests/hostile/fuzz_crashes"))
    log = Path(os.environ["LRFER_FUZZ_LOG"]) if os.environ.get("LRFER_FUZZ_LOG") else None
    seen: set[str] = set()

    def one_input(data: bytes) -> None:
        try:
            run(data)
        except Exception as err:  # outside the contract: keep the first input per distinct error
            sig = signature(err)
            if sig not in seen:
                seen.add(sig)
                path = save_crash(target, data, err, folder, log)
                print(f"\n== new crash in {target}: {sig} -> {path}", file=sys.stderr, flush=True)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
