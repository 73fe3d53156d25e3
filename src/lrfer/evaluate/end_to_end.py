"""Scoring a detect-and-classify path on whole photos: a face the detector missed is a wrong answer.

On face crops every face gets an answer; on a photo the detector may find nothing, and what a user
gets for that face is no answer at all. :func:`end_to_end_report` scores the answers of all the
faces put into the photos (``None``: the face was not found), so that a pipeline cannot look good by
finding only the easy faces:

- ``accuracy``: right answers over ALL faces (a missed face counts as wrong);
- ``found``: the share of faces found; ``accuracy_found``: right answers over the faces found;
- ``macro_f1``: the mean F1 over the classes that occur in the labels or the answers (the
  convention of :func:`lrfer.evaluate.metrics.classification_report`), where a missed face lowers
  its true class's recall and counts as no class's prediction (its precision is untouched).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

import numpy as np

from .metrics import confusion_matrix


def end_to_end_report(true: Iterable[str], pred: Iterable[Optional[str]], classes: Sequence[str]) -> dict[str, Any]:
    """``n``, ``found``, ``accuracy``, ``accuracy_found``, ``macro_f1``, ``per_class`` (precision,
    recall, f1, support, found) for class names ``true`` and answers ``pred`` (``None``: missed).

    Every true label and every answer must be one of ``classes`` (leave out the faces of classes
    the model does not know before scoring: it cannot be right about them)."""
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    t_names, p_names = list(true), list(pred)
    if len(t_names) != len(p_names):
        raise ValueError(f"true has {len(t_names)} labels, pred has {len(p_names)}")
    unknown = sorted({str(v) for v in t_names if v not in index} | {str(v) for v in p_names if v is not None and v not in index})
    if unknown:
        raise ValueError(f"labels or answers {unknown} are not among the classes {classes}")
    k = len(classes)
    t = np.array([index[v] for v in t_names], dtype=np.int64)
    # a missed face is column k: in its true class's row (recall falls), in no class's column (precision stays)
    p = np.array([k if v is None else index[v] for v in p_names], dtype=np.int64)
    cm = confusion_matrix(t, p, k + 1)[:k]  # rows: true classes; columns: the k classes, then "missed"
    named = cm[:, :k]
    support = cm.sum(axis=1)  # every face of the class, the missed ones included
    tp = np.diag(named).astype(np.float64)
    precision = np.divide(tp, named.sum(axis=0), out=np.zeros(k), where=named.sum(axis=0) > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    seen = (support > 0) | (named.sum(axis=0) > 0)
    n, found = len(t), int((p < k).sum())
    correct = int(tp.sum())
    return {
        "n": n,
        "found": found / n if n else 0.0,
        "accuracy": correct / n if n else 0.0,
        "accuracy_found": correct / found if found else None,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i]), "found": int(named[i].sum())}
            for i, c in enumerate(classes)
        },
    }
