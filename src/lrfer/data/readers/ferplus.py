"""FERPlus: ``fer2013new.csv``'s ten vote columns joined to FER2013's pixels by row order, and the
label modes that turn votes into labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ...errors import LrferError, closest
from ...progress import Progress
from ..faceset import FaceSet
from ..labels import CANONICAL, canonical_name
from ..splits import duplicate_groups
from ._common import PathLike, csv_lines, empty, existing, finish, header_index, open_npz, require_keys, same_rows, source
from .fer2013 import read_fer2013_csv

#: The ten vote columns of FERPlus's ``fer2013new.csv``, in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
_FERPLUS_TO_CANON = np.array([CANONICAL.index(canonical_name(c)) for c in FERPLUS_COLUMNS[:8]])
_CANON_TO_FERPLUS = np.argsort(_FERPLUS_TO_CANON)
FERPLUS_MODES = ("majority", "plurality", "probability")
#: The largest vote count a vote file may hold: FERPlus has 10 taggers a face; far more is a damaged file.
MAX_VOTES = 1_000_000


def ferplus_labels(
    votes: np.ndarray, mode: str = "majority", ties: str = "drop", min_votes: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """FERPlus label modes from the 10 vote columns (file order, :data:`FERPLUS_COLUMNS`).

    Returns ``(keep, labels, soft, excluded)``: a row mask, canonical label indices, votes of the 8
    emotions normalised to sum 1 in canonical order (float32), and the number of rows dropped per
    reason. Rules (Barsoum et al. 2016; the reference code's ``np.argmax`` tie order):

    - always dropped: rows without any vote (``no_votes``), and rows where ``unknown`` or ``NF``
      has strictly more votes than the best emotion (``unknown_or_nf``; this includes every row with
      no emotion vote). A tie goes to the emotion, as ``argmax`` over the columns does, because the
      emotion columns come first;
    - ``majority``: keep rows whose top emotion has more than half of all 10 columns' votes;
    - ``plurality``: the top emotion; a row whose top count is shared (with another emotion, or with
      unknown/NF) is dropped with ``ties="drop"``, or goes to the first column with ``ties="first"``;
    - ``probability``: every remaining row; the hard label is the first top emotion, the soft label
      carries the votes.

    ``min_votes=2`` zeroes counts of a single tagger before anything else, the outlier removal of
    the FERPlus reference code; the default 1 keeps every vote.
    """
    if mode not in FERPLUS_MODES:
        raise LrferError(f"unknown FERPlus label mode '{mode}'", closest(mode, FERPLUS_MODES))
    if ties not in ("drop", "first"):
        raise LrferError(f"unknown ties rule '{ties}'", "use ties='drop' (drop tied rows) or ties='first'")
    v = np.asarray(votes, dtype=np.int64).copy()
    if v.ndim != 2 or v.shape[1] != len(FERPLUS_COLUMNS):
        raise ValueError(f"FERPlus votes must be (N, 10), got {v.shape}")
    if min_votes > 1:
        v[v < min_votes] = 0
    emotions, other = v[:, :8], v[:, 8:]
    best = emotions.max(1)
    first = emotions.argmax(1)
    no_votes = v.sum(1) == 0
    not_face = other.max(1) > best  # includes rows whose only votes are unknown / NF
    no_emotion = no_votes | not_face
    tie = (v == best[:, None]).sum(1) > 1
    if mode == "majority":
        rule, rule_name = 2 * best > v.sum(1), "no_majority"
    elif mode == "plurality" and ties == "drop":
        rule, rule_name = ~tie, "tie"
    else:
        rule, rule_name = np.ones(len(v), dtype=bool), None
    keep = ~no_emotion & rule
    excluded = {"no_votes": int(no_votes.sum()), "unknown_or_nf": int(not_face.sum())}
    if rule_name:
        excluded[rule_name] = int((~no_emotion & ~rule).sum())
    total = emotions.sum(1, keepdims=True)
    soft = np.divide(emotions, total, out=np.zeros(emotions.shape, dtype=np.float64), where=total > 0)
    soft = soft[:, _CANON_TO_FERPLUS].astype(np.float32)
    return keep, _FERPLUS_TO_CANON[first].astype(np.int64), soft, excluded


def votes_as_soft_labels(votes: np.ndarray, classes: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """FERPlus votes as class distributions over ``classes`` (e.g. FER2013's 7), ``(N, len(classes))``.

    Votes for classes outside ``classes`` (FER2013 has no contempt) and for unknown / NF are left
    out before normalising; a row with no vote left (no votes, or only unknown / NF / an absent
    class) keeps its own label, one-hot, so the distribution never says less than the hard label.
    """
    v = np.asarray(votes, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != len(FERPLUS_COLUMNS):
        raise ValueError(f"FERPlus votes must be (N, 10), got {v.shape}")
    canon = v[:, :8][:, _CANON_TO_FERPLUS]  # canonical order
    picked = canon[:, [CANONICAL.index(c) for c in classes]].astype(np.float32)
    total = picked.sum(1, keepdims=True)
    soft = np.eye(len(classes), dtype=np.float32)[labels]
    has_votes = total[:, 0] > 0
    soft[has_votes] = picked[has_votes] / total[has_votes]
    return soft


def _read_ferplus_votes(path: Path) -> dict:
    rows = csv_lines(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise LrferError(f"{path} is empty", "expected FERPlus's fer2013new.csv") from None
    required = ("Usage", "Image name") + FERPLUS_COLUMNS
    col = header_index(path, header, required)
    idx = [col[c] for c in FERPLUS_COLUMNS]
    votes: list[list[int]] = []
    usage: list[str] = []
    names: list[str] = []
    for number, fields in rows:
        if len(fields) != len(header):
            raise LrferError(f"{path} line {number}: {len(fields)} fields, the header has {len(header)}",
                             "the file may be truncated or damaged: re-download fer2013new.csv")
        try:
            row = [int(fields[i]) for i in idx]
        except ValueError:
            raise LrferError(f"{path} line {number}: a vote count is not an integer",
                             "vote columns must hold whole numbers of taggers") from None
        if min(row) < 0:
            raise LrferError(f"{path} line {number}: negative vote count", "vote counts must be >= 0")
        if max(row) > MAX_VOTES:  # also keeps the counts within int64, where the label rules add them up
            raise LrferError(f"{path} line {number}: vote count {max(row)} is not a number of taggers",
                             f"vote counts are at most {MAX_VOTES} (FERPlus has 10 taggers per face)")
        votes.append(row)
        usage.append(fields[col["Usage"]].strip())
        names.append(fields[col["Image name"]].strip())
    if not votes:
        raise empty(path, "the csv has a header but no rows")
    return {
        "votes": np.asarray(votes, dtype=np.int64),
        "usage": np.asarray(usage, dtype=str),
        "names": np.asarray(names, dtype=str),
    }


def fer2013_images(path: Path, z) -> np.ndarray:
    """The FER2013 pixels of an open npz: uint8 (N, H, W), or an LrferError."""
    images = z["images"]
    if images.dtype != np.uint8 or images.ndim != 3:
        raise LrferError(f"{path}: images are {images.dtype} of shape {images.shape}, not uint8 (N, 48, 48)",
                         "FER2013 pixels are stored as (N, 48, 48) uint8 faces")
    return images


def ferplus_votes(path: Path, z, n: int) -> np.ndarray:
    """An open npz's ``ferplus_votes``: ``n`` rows of the 10 vote counts, or an LrferError."""
    votes = z.column("ferplus_votes", np.int64, ndim=2)
    if votes.shape != (n, len(FERPLUS_COLUMNS)) or votes.min(initial=0) < 0 or votes.max(initial=0) > MAX_VOTES:
        raise LrferError(f"{path}: ferplus_votes of shape {votes.shape} are not {n} rows of {len(FERPLUS_COLUMNS)} "
                         f"vote counts 0-{MAX_VOTES}", "store the ten FERPlus columns per image, in fer2013new.csv order")
    return votes


def _fer2013_source(path: Path, progress: Optional[Progress]) -> dict:
    """FER2013 pixels for the FERPlus join: the csv, or the shared npz (which carries its row numbers)."""
    if path.suffix.lower() == ".npz":
        with open_npz(path) as z:
            require_keys(path, z, ("images", "labels", "usage", "row_index"))
            data = {
                "images": fer2013_images(path, z),
                "labels": z.column("labels", np.int64),
                "usage": z.column("usage", str),
                "row_index": z.column("row_index", np.int64),
                "dup_group": z.column("dup_group_id", np.int64) if "dup_group_id" in z.files else None,
            }
        same_rows(path, len(data["images"]), labels=data["labels"], usage=data["usage"], row_index=data["row_index"],
                  dup_group_id=data["dup_group"])
        return data
    data = read_fer2013_csv(path, progress)
    data["row_index"] = np.arange(len(data["labels"]), dtype=np.int64)
    data["dup_group"] = None
    return data


def _find_fer2013_beside(path: Path) -> Path:
    folder = path.parent
    candidates = [folder / "fer2013.csv", folder / "fer2013.npz", folder / "fer2013" / "fer2013.csv",
                  folder.parent / "fer2013.csv", folder.parent / "fer2013" / "fer2013.csv"]
    for c in candidates:
        if c.is_file():
            return c
    raise LrferError(
        f"{path} holds FERPlus votes only, and no FER2013 pixels were found beside it "
        f"(looked for {', '.join(str(c) for c in candidates[:3])})",
        "pass fer2013=PATH to fer2013.csv or to the fer2013.npz archive",
    )


def ferplus_faceset(
    *, path: Path, fmt: str, source_opts: dict, images: np.ndarray, votes: np.ndarray, split: np.ndarray,
    row_index: np.ndarray, dup_group: Optional[np.ndarray], mode: str, ties: str, min_votes: int,
) -> FaceSet:
    """The FERPlus FaceSet of FER2013 pixels and their votes, whether both came from csv files or the npz."""
    keep, labels, soft, excluded = ferplus_labels(votes, mode, ties, min_votes)
    tensor = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    if dup_group is None:  # numbered over all rows, so every mode of one file shares the numbering
        dup_group = duplicate_groups(tensor)
    rows = np.flatnonzero(keep)
    t = torch.from_numpy(rows)
    return finish(
        path=path,
        name="ferplus",
        source=source(fmt, path, **source_opts, mode=mode, ties=ties, min_votes=min_votes),
        images=tensor[t],
        labels=labels[rows],
        classes=CANONICAL,
        split=split[rows],
        ids=np.char.add("fer2013.csv:row ", row_index[rows].astype(str)),
        dup_group=dup_group[rows],
        soft_labels=torch.from_numpy(soft[rows]),
        meta={"ferplus": {"mode": mode, "ties": ties, "min_votes": min_votes, "excluded": excluded}},
    )


def ferplus(
    path: PathLike,
    *,
    fer2013: Optional[PathLike] = None,
    mode: str = "majority",
    ties: str = "drop",
    min_votes: int = 1,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """FERPlus: ``fer2013new.csv`` votes joined to FER2013 pixels by row order, 8 canonical classes.

    Row k of ``fer2013new.csv`` is row k of ``fer2013.csv``: the ``Image name`` column is not a row
    index (it skips unnamed rows and drifts by up to 85), so it is ignored. The pixels come from
    ``fer2013`` (the csv or the shared npz) or from a ``fer2013.csv``/``fer2013.npz`` found beside the
    vote file. The ``Usage`` columns of both files must agree row by row, which catches files from
    different releases. Label modes: see :func:`ferplus_labels`. ``soft_labels`` always hold the
    normalised emotion votes; split names are FER2013's.
    """
    p = existing(path)
    src = existing(fer2013) if fer2013 is not None else _find_fer2013_beside(p)
    votes = _read_ferplus_votes(p)
    data = _fer2013_source(src, progress)
    row_index = data["row_index"]
    m = len(votes["votes"])
    if src.suffix.lower() != ".npz" and m != len(row_index):
        raise LrferError(
            f"{p} has {m} rows but {src} has {len(row_index)}; FERPlus votes are joined by row order",
            "use the complete files of one release (both have 35887 rows)",
        )
    if len(row_index) and int(row_index.max()) >= m:
        raise LrferError(f"{src} refers to row {int(row_index.max())} but {p} has only {m} rows",
                         "use the complete fer2013new.csv (35887 rows)")
    if len(row_index) and int(row_index.min()) < 0:
        raise LrferError(f"{src}: row_index holds {int(row_index.min())}, not a row number", "row numbers start at 0")
    split = votes["usage"][row_index]
    if data["usage"] is not None:
        differ = np.flatnonzero(data["usage"] != split)
        if len(differ):
            k = int(differ[0])
            raise LrferError(
                f"{p} line {int(row_index[k]) + 2} says Usage '{split[k]}' but row {int(row_index[k])} of {src} "
                f"says '{data['usage'][k]}' ({len(differ)} rows disagree)",
                "the vote file and the FER2013 file do not match row by row: use files of the same release",
            )
    return ferplus_faceset(
        path=p, fmt="ferplus", source_opts={"fer2013": str(src.resolve())}, images=data["images"],
        votes=votes["votes"][row_index], split=split, row_index=row_index, dup_group=data["dup_group"],
        mode=mode, ties=ties, min_votes=min_votes,
    )
