"""``lrfer batch``: a photo and video archive in, Parquet shards out; here, or on a Ray cluster."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ..errors import LrferError
from ..files import check_writable
from ._common import Bars, positive_float, positive_int
from .infer import abstain_thresholds, add_recognizer_options, upscale_factor

#: What ``--ray`` accepts: ``local``, ``auto``, ``host:port`` or a ``ray://`` client address.
_ADDRESS = re.compile(r"^(local|auto|ray://\S+|[\w.\-]+:\d+)$")


def add_parsers(sub) -> None:
    sp = sub.add_parser("batch", help="an archive of photos and videos to Parquet, resumable, here or on a Ray cluster")
    sp.add_argument("sources", nargs="+", metavar="SOURCE", help="photos, videos, or folders that hold them (searched recursively)")
    sp.add_argument("--out", required=True, metavar="DIR", help="the output folder: Parquet shards and _summary.json; a rerun skips the files it holds")
    sp.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help="run on Ray: alone, a Ray instance started here; auto, the cluster `ray start` runs; or HOST:PORT (put --ray=ADDRESS after the sources)",
    )  # fmt: skip
    sp.add_argument("--workers", type=positive_int, default=1, help="Ray actors, each holding one model (default 1)")
    sp.add_argument("--cpus-per-worker", type=positive_int, default=1, help="CPUs Ray gives each actor (default 1; 2 lets detection and classification each have one)")
    sp.add_argument("--sample-fps", type=positive_float, default=2.0, help="video frames analysed per second of video (default 2; the video's frame rate or more: every frame)")
    sp.add_argument("--video-upscale", type=upscale_factor, default=1.0, help="--upscale for video frames (default 1: speed first)")
    sp.add_argument("--files-per-task", type=positive_int, default=8, help="files a worker takes at a time (default 8)")
    sp.add_argument("--shard-files", type=positive_int, default=256, help="files per output shard: a killed run redoes at most this many (default 256)")
    sp.add_argument("--batch-frames", type=positive_int, default=8, help="video frames detected and classified together")
    sp.add_argument("--no-progress", action="store_true")
    add_recognizer_options(sp, upscale="auto", routes=False, rows=False)
    sp.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    from ..batch.analyze import BatchOptions
    from ..batch.run import InProcess, run_batch

    if args.ray is not None and not _ADDRESS.match(args.ray):
        hint = "it names a file or folder: put --ray after the sources, or write --ray=ADDRESS" if Path(args.ray).exists() else "give local, auto, HOST:PORT or ray://HOST:PORT"
        raise LrferError(f"--ray {args.ray}: not a Ray cluster address", hint)
    if args.ray is None and (args.workers, args.cpus_per_worker) != (1, 1):
        raise LrferError("--workers and --cpus-per-worker need --ray: in this process one model runs", "add --ray to run workers on Ray here, or --ray=auto for a cluster")
    check_writable(args.out, "--out", folder=True)
    options = BatchOptions(
        checkpoint=args.checkpoint, backend=args.backend, device=args.device, detector=None if args.no_detect else args.detector,
        min_score=args.min_score, upscale=args.upscale, video_upscale=args.video_upscale, min_face=args.min_face, margin=args.margin,
        align=args.align, tta=args.tta, sample_fps=args.sample_fps, batch_frames=args.batch_frames, prior=args.prior, abstain=args.abstain, reading=args.reading,
        thresholds=tuple((k, v) for k, v in abstain_thresholds(args).items() if v is not None),
    )  # fmt: skip
    if args.ray is None:
        engine = InProcess(args.files_per_task)
    else:
        from ..batch.on_ray import OnRay  # Ray takes seconds to import, and only --ray needs it

        engine = OnRay(args.ray, args.workers, args.files_per_task, args.cpus_per_worker)
    bars = Bars(enabled=not args.no_progress)
    try:
        s = run_batch(args.sources, args.out, options, engine=engine, shard_files=args.shard_files, progress=bars)
    finally:
        bars.close()
    skipped = f" ({s.skipped} already in {s.out})" if s.skipped else ""
    print(
        f"{s.files} files{skipped}: analysed {s.analysed} in {s.seconds:.1f} s ({s.files_per_second:.1f} files/s, {s.engine}), "
        f"{s.faces} faces, {s.problems} with problems; wrote {s.shards} shards to {s.out}"
    )
    if s.problems:
        print(f"lrfer: files or paths that could not be read: {s.problems}; their status rows in {s.out} say why", file=sys.stderr)
    return 0 if s.read or s.skipped else 2  # non-zero only when no file could be read at all
