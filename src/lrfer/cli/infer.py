"""``lrfer predict`` (photos), ``lrfer video`` (a video file) and ``lrfer webcam`` (a camera):
faces found, cropped and classified by a :class:`~lrfer.infer.recognizer.Recognizer`."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from pathlib import Path

from ..errors import LrferError
from ..files import atomic_write_text, check_writable
from ..infer.crop import DEFAULT_MARGIN
from ..infer.detect import DEFAULT_DETECTOR
from ._common import add_model_options, non_negative_float, non_negative_int, positive_int, print_table, probability


def add_parsers(sub) -> None:
    sp = sub.add_parser("predict", help="faces and expressions in photos (files or folders)")
    sp.add_argument("paths", nargs="+")
    add_recognizer_options(sp, upscale="auto")  # photos: finding the small faces first
    sp.add_argument("--annotate", metavar="DIR", help="save copies of the images with boxes and labels drawn")
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("video", help="faces, tracks and expressions in a video file")
    sp.add_argument("input")
    _add_video_options(sp)
    sp.set_defaults(func=cmd_video)

    sp = sub.add_parser("webcam", help="faces and expressions from a camera, printed per frame")
    sp.add_argument("--camera", default="0", help="camera number or device path (default 0: /dev/video0)")
    _add_video_options(sp)
    sp.set_defaults(func=cmd_webcam)


def add_recognizer_options(sp, upscale, *, routes: bool = True, rows: bool = True) -> None:
    """The options of :func:`recognizer_from_args` (``routes``: with ``--route``) and, with ``rows``, of :func:`_row_writer`."""
    add_model_options(sp)
    sp.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"], help="classifier runtime: auto = onnxruntime on the CPU (exported once, cached), torch on a GPU")
    sp.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"face detector: {DEFAULT_DETECTOR} (default), yuface, mtcnn, haar, mediapipe")
    sp.add_argument("--no-detect", action="store_true", help="the inputs are already face crops")
    sp.add_argument("--min-score", type=probability, default=0.5, help="detector confidence threshold")
    sp.add_argument("--upscale", type=upscale_factor, default=upscale, help=f"enlarge frames before detection to find faces under ~16 px: a factor, or auto (longer side to 1280 px, at most 2x); default {upscale}")
    sp.add_argument("--min-face", type=non_negative_int, default=0, help="ignore faces smaller than this many pixels")
    sp.add_argument("--margin", type=non_negative_float, default=DEFAULT_MARGIN, help=f"crop margin around the detected box, as a fraction of its size (default {DEFAULT_MARGIN})")
    sp.add_argument("--align", action="store_true", help="rotate each face so the eyes are level")
    add_trust_options(sp)
    if routes:
        sp.add_argument("--route", action="append", default=[], metavar="PX=CKPT", help="faces under PX pixels go to model CKPT")
    if not rows:
        return
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--csv", metavar="FILE", help="write one row per face as CSV")
    g.add_argument("--json", metavar="FILE", help="write one record per face as JSON (.jsonl: JSON lines)")


def add_trust_options(sp) -> None:
    """The deployment prior and the abstention rule (docs/trust.md)."""
    sp.add_argument("--prior", metavar="SPEC", help="the place's class shares, e.g. neutral=0.5,happy=0.25 (classes not named share the rest) or uniform; needs the model's training shares")
    sp.add_argument("--abstain", action="store_true", help="mark faces 'uncertain' by the abstention rule stored with the model (lrfer calibrate --coverage)")
    sp.add_argument("--min-confidence", type=probability, metavar="P", help="uncertain when the top class's probability is below P (over the stored rule with --abstain)")
    sp.add_argument("--min-margin", type=probability, metavar="P", help="uncertain when the top two probabilities are closer than P")
    sp.add_argument("--uncertain-below", type=non_negative_int, metavar="PX", help="uncertain when the face is smaller than PX pixels (unlike --min-face, it is still classified)")


def abstain_of(args, stored):
    """The abstention rule the options ask for (``stored``: the model's rule), or None."""
    from ..runtime.decision import with_overrides

    return with_overrides(stored, **abstain_thresholds(args))


def abstain_thresholds(args) -> dict:
    """The thresholds given on the command line (None: not given)."""
    return {"min_confidence": args.min_confidence, "min_margin": args.min_margin, "min_face": args.uncertain_below}


def _add_video_options(sp) -> None:
    """The options of ``video`` and ``webcam``: the recognizer's, and how frames are read, tracked and written."""
    add_recognizer_options(sp, upscale=1.0)  # every frame: speed first
    sp.add_argument("--out", metavar="VIDEO", help="write the video with boxes and labels drawn (.mp4)")
    sp.add_argument("--summary", metavar="FILE", help="write the per-track summary as JSON")
    sp.add_argument("--smoothing", default="ema", choices=["ema", "window", "none"], help="per-track smoothing of probabilities")
    sp.add_argument("--alpha", type=probability, default=0.6, help="EMA weight of the newest frame")
    sp.add_argument("--window", type=positive_int, default=5, help="frames averaged by --smoothing window")
    sp.add_argument("--batch-frames", type=positive_int, default=8, help="frames detected and classified together")
    sp.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    sp.add_argument("--no-progress", action="store_true")


def upscale_factor(text: str):
    """``--upscale``: a positive factor or ``auto``."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or 'auto'") from None


def recognizer_from_args(args, threads=None):
    """The Recognizer the options of :func:`add_recognizer_options` describe (``threads``: its classifier's)."""
    from ..infer.recognizer import Recognizer

    routes = []
    for item in args.route:
        px, _, path = item.partition("=")
        if not px.isdigit() or not path:
            raise LrferError(f"--route {item!r}", "write --route PIXELS=CHECKPOINT, e.g. --route 16=tiny.safetensors")
        routes.append((int(px), path))
    rec = Recognizer(
        args.checkpoint, None if args.no_detect else args.detector, args.device,
        backend=args.backend, min_score=args.min_score, upscale=args.upscale, margin=args.margin,
        align=args.align, min_face=args.min_face, tta=args.tta, routes=routes, threads=threads,
        prior=args.prior, abstain="model" if args.abstain else None, reading=args.reading,
    )  # fmt: skip
    rec.abstain = abstain_of(args, rec.abstain)
    if threads is not None and "torch" in sys.modules:  # --backend torch, a GPU, or a .safetensors model
        # The same split for the torch classifier: its OpenMP pool on every core, beside the
        # detection thread, made each small op wait for a descheduled thread.
        sys.modules["torch"].set_num_threads(threads)
    return rec


def _check_outputs(args, *, annotate: bool = False, video: bool = False) -> None:
    """Every output path can be written, checked before any work (a long run must not end in an
    output it cannot write)."""
    from ..infer.video import VIDEO_SUFFIXES

    for flag, path in (("--csv", args.csv), ("--json", args.json)):
        if path:
            check_writable(path, flag)
    if annotate and args.annotate:
        check_writable(args.annotate, "--annotate", folder=True)
    if video:
        for flag, path in (("--out", args.out), ("--summary", args.summary)):
            if path:
                check_writable(path, flag)
        if args.out and Path(args.out).suffix.lower() not in VIDEO_SUFFIXES:
            raise LrferError(f"--out {args.out}: not a video file name", f"end it with {', '.join(VIDEO_SUFFIXES)}")


def _row_writer(args, classes, fields, atomic: bool = True):
    """A streaming CSV/JSON writer for --csv/--json FILE, or None. ``atomic``: the file replaces
    the user's only when the run ends well (RowWriter.close(keep=...))."""
    from ..infer.writers import RowWriter

    if args.csv:
        return RowWriter(args.csv, "csv", classes, fields=fields, atomic=atomic)
    if args.json:
        return RowWriter(args.json, "jsonl" if args.json.endswith(".jsonl") else "json", classes, fields=fields, atomic=atomic)
    return None


#: What to do about a photo in which no face was found (its status line on stderr).
NO_FACE_HINT = "faces under ~16 px may need --upscale 2, a blurred one a lower --min-score"


# ---------------------------------------------------------------------------- photos
def cmd_predict(args) -> int:
    from ..infer.io import predict_files
    from ..infer.recognizer import PHOTO_FIELDS, photo_threads

    _check_outputs(args, annotate=True)
    rec = recognizer_from_args(args, threads=photo_threads())
    writer = _row_writer(args, rec.classes, PHOTO_FIELDS)
    processed, table, n_rows, finished = set(), [], 0, False
    try:
        for row in predict_files(rec, args.paths, annotate_dir=args.annotate):
            n_rows += 1
            hint = row.pop("hint", None) or (NO_FACE_HINT if row["status"] == "no face found" else None)
            if row["status"] in ("ok", "no face found"):
                processed.add(row["file"])
            if row["status"] != "ok":
                print(f"lrfer: {row['file']}: {row['status']}" + (f" ({hint})" if hint else ""), file=sys.stderr)
            if writer is not None:
                writer.write(row)
            else:
                table.append({**row, **row.get("probabilities", {})})
        finished = True
    finally:
        if writer is not None:
            # a run that fails, or reads no file at all, leaves the user's earlier file as it was
            writer.close(keep=finished and bool(processed))
    if writer is not None:
        if processed:
            print(f"wrote {n_rows} rows to {args.csv or args.json}")
    else:
        box = [] if args.no_detect else ["face", "x1", "y1", "x2", "y2"]
        print_table(table, ["file", "status", *box, "size", "label", "confidence", "uncertain", *rec.classes])
    return 0 if processed else 2  # non-zero only when no file could be processed at all: bad input


# ---------------------------------------------------------------------------- video and webcam
def cmd_video(args, webcam: bool = False) -> int:
    from ..infer.recognizer import VIDEO_FIELDS
    from ..infer.video import open_video, open_webcam
    from ..infer.writers import TrackSummary

    _check_outputs(args, video=True)
    rec = recognizer_from_args(args)
    source = open_webcam(int(args.camera) if args.camera.isdigit() else args.camera) if webcam else open_video(args.input)
    summary = TrackSummary(rec.classes)
    # a camera's rows go straight to the file, for whoever reads it while it grows (a camera run
    # has no end to wait for); a video's replace the user's file when the video is done
    n = _run_frames(args, rec, source, _row_writer(args, rec.classes, VIDEO_FIELDS, atomic=not webcam), summary, webcam)
    status = getattr(source, "status", "ok")
    if status != "ok":
        print(f"{args.input if not webcam else 'camera'}: {status} (kept the {n} frames before it)", file=sys.stderr)
    if n == 0:
        raise LrferError("no frames could be read", "check the video file or camera")
    rows = summary.rows()
    if args.summary:
        atomic_write_text(args.summary, json.dumps(rows, indent=2) + "\n")
    if rows and not webcam:
        print_table(
            [{**r, **{c: f"{r[f'share_{c}']:.0%}" for c in rec.classes}} for r in rows],
            ["track_id", "first_time", "last_time", "frames", "dominant", *rec.classes],
        )
    print(f"{n} frames, {len(rows)} face tracks" + "".join(f"; wrote {p}" for p in (args.out, args.csv, args.json, args.summary) if p))
    return 0


def cmd_webcam(args) -> int:
    return cmd_video(args, webcam=True)


def _run_frames(args, rec, source, writer, summary, webcam: bool) -> int:
    """Recognizes the faces of ``source`` frame by frame: each face goes to the track ``summary``
    and the row ``writer``, each frame to the ``--out`` video, and with ``webcam`` (and no file to
    write) one line per frame to stdout. Closes the source and every output; returns the number
    of frames read."""
    from ..infer.annotate import draw_faces
    from ..infer.video import VideoWriter

    out_video = bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=source.frame_count, unit="frame", file=sys.stderr, dynamic_ncols=True, disable=None)
    stream = rec.stream(
        source, batch_frames=args.batch_frames, smoothing=args.smoothing, alpha=args.alpha, window=args.window,
        keep_frames=args.out is not None,
    )  # fmt: skip
    n, ended = 0, False
    try:
        # the stream closes before the source: its reader thread must stop decoding before the
        # container it reads from is closed (PyAV crashed now and then after --max-frames)
        with source, closing(stream):
            for result in stream:
                n += 1
                if args.out is not None:
                    if out_video is None:
                        out_video = VideoWriter(args.out, source.fps, source.width, source.height)
                    out_video.write(draw_faces(result.image, result.faces))
                for face in result.faces:
                    summary.update(face.track_id, face.label, result.time)
                    if writer is not None:
                        writer.write({"frame": result.index, "time": round(result.time, 3), "track_id": face.track_id, **face.to_row()})
                if webcam and args.csv is None and args.json is None:
                    faces = "  ".join(f"#{f.track_id} {f.label} {f.confidence:.2f}{' (uncertain)' if f.uncertain else ''}" for f in result.faces) or "-"
                    print(f"frame {result.index}  t={result.time:.2f}s  {faces}", flush=True)
                if bar is not None:
                    bar.update(1)
                if args.max_frames and n >= args.max_frames:
                    break
        ended = True
    except KeyboardInterrupt:
        ended = webcam  # Ctrl-C is how a camera run ends; it stops a video half done
        raise
    finally:
        if bar is not None:
            bar.close()
        for output in (writer, out_video):  # kept when the run ended well and read frames, else the user's files stay
            if output is not None:
                output.close(keep=ended and n > 0)
    return n
