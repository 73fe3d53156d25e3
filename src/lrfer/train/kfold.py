"""Subject-independent k-fold cross-validation (the CK+ / JAFFE protocol).

Each fold trains a fresh model with the same config on the other folds' subjects and scores the
held-out subjects. The number reported is the accuracy of the **last** epoch on each held-out
fold, pooled over all faces (every face is tested exactly once): picking the best epoch on the
test fold would select on the test data. The best-epoch accuracy is recorded beside it, named so.

Folds run one after another into ``out_dir/fold_XX/``; a fold whose ``fold.json`` exists is not
run again, and an interrupted fold resumes from its ``last.safetensors``, so a killed 10-fold run
restarts where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data.faceset import FaceSet
from ..data.splits import mixed_into, subject_kfold
from ..errors import LrferError
from ..files import atomic_write_text
from ..models.checkpoint import load_checkpoint
from ..progress import Progress, report
from .config import TrainConfig
from .engine import fit
from .run import remove_stale_temps


def cross_validate(
    cfg: TrainConfig,
    faces: FaceSet,
    out_dir: str | os.PathLike,
    *,
    k: int = 10,
    fold_seed: int = 0,
    folds: Optional[Sequence[int]] = None,
    progress: Optional[Progress] = None,
    info: Optional[dict] = None,
) -> dict:
    """Train and score ``k`` subject-independent folds; returns (and writes) ``kfold.json``."""
    check_start_never_saw(cfg, faces)
    splits = subject_kfold(faces, k=k, seed=fold_seed)
    todo = list(range(k)) if folds is None else sorted(set(folds))
    bad = [f for f in todo if not 0 <= f < k]
    if bad:
        raise LrferError(f"fold(s) {bad} out of range for k={k}", f"use fold numbers 0..{k - 1}")
    out = Path(out_dir)
    remove_stale_temps(out)  # of a kfold.json write a kill cut short; each fold's Run cleans its own folder
    # The fold split is the whole protocol: the training split of the recipe does not apply.
    fold_cfg = dataclasses.replace(cfg, train_split="all", val_split="fold")
    results = []
    for f in todo:
        fold_dir = out / f"fold_{f:02d}"
        done = fold_dir / "fold.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            continue
        train_idx, test_idx = splits[f]
        report(progress, "kfold", len(results), len(todo), message=f"fold {f + 1}/{k}: train {len(train_idx)} faces, test {len(test_idx)}")
        result = fit(fold_cfg, faces.subset(train_idx), faces.subset(test_idx), fold_dir, resume=(fold_dir / "last.safetensors").exists(), progress=progress, info=info)
        last = result.history[-1]
        row = {
            "fold": f,
            "n_train": int(len(train_idx)),
            "n_test": int(len(test_idx)),
            "test_subjects": sorted({str(g) for g in np.asarray(faces.groups)[test_idx]}),
            "last_epoch": int(last["epoch"]),
            "accuracy": float(last["val_acc"]),
            "correct": int(round(float(last["val_acc"]) * len(test_idx))),
            "best_epoch_accuracy": float(result.best_metric),
            "best_epoch": int(result.best_epoch),
        }
        atomic_write_text(done, json.dumps(row, indent=2) + "\n")
        results.append(row)
    summary = summarize(results, k)
    summary.update({"config": cfg.to_dict(), "fold_seed": fold_seed, "data": faces.name, **(info or {})})
    atomic_write_text(out / "kfold.json", json.dumps(summary, indent=2) + "\n")
    return summary


def check_start_never_saw(cfg: TrainConfig, faces: FaceSet) -> None:
    """Refuse starting weights trained on this very set (``extra_train``): they saw half of its
    subjects, so every fold would score faces the model had learnt (the shipped model saw CK+48's)."""
    path = cfg.init_weights_path
    if not path or Path(path).suffix != ".safetensors":
        return
    try:
        config = load_checkpoint(path).info.get("config") or {}
    except LrferError:  # a plain weights file: no training record to read
        return
    if mixed_into(config, faces):
        raise LrferError(f"init_weights {cfg.init_weights} was trained with part of {Path(faces.meta['source']['path']).name} mixed in (extra_train), so its folds would score faces it saw",
                         "start from weights that never saw this set, e.g. the GPU stage: --init-weights gpu_stage.safetensors (docs/training.md)")  # fmt: skip


def summarize(results: list[dict], k: int) -> dict:
    """Pooled and per-fold-mean accuracy of the last epoch (and, labelled, of the best epoch)."""
    acc = np.array([r["accuracy"] for r in results])
    n = sum(r["n_test"] for r in results)
    return {
        "k": k,
        "folds_done": len(results),
        "accuracy_pooled": sum(r["correct"] for r in results) / n if n else float("nan"),
        "accuracy_mean": float(acc.mean()) if len(acc) else float("nan"),
        "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
        "best_epoch_accuracy_mean_optimistic": float(np.mean([r["best_epoch_accuracy"] for r in results])) if results else float("nan"),
        "folds": sorted(results, key=lambda r: r["fold"]),
    }
