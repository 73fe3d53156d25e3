"""Where a CPU training step's time goes, for a recipe: augmentation against the optimizer step.

Times, with the recipe's model, batch size, augmentation, loss and optimizer (built by the
training engine's own functions), ``--reps`` batches of each part: batched augmentation on the
CPU, and forward + backward + optimizer step, in eager mode and under ``torch.compile`` (its
compile time reported apart). The forward pass's multiply-accumulates are counted with hooks on the
convolutions and linear layers; a training step is taken as 3x the forward FLOPs (forward, and
the two products of the backward pass), which gives the achieved GFLOP/s: how close the step is
to what the cores can do. Run it with nothing else on the machine.

    python bench/cpu_step_profile.py                     # fer2013_cpu30, 2 threads
    python bench/cpu_step_profile.py --reps 5 --no-compile --out /tmp/p.json   # a smoke run

Writes bench/results/cpu_step_profile_<recipe>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import ROOT, add_threads_arg, cpu_model, provenance


def forward_macs(model, x) -> int:
    """Multiply-accumulates of one forward pass through the model's convolutions and linear layers."""
    import torch
    from torch import nn

    total = [0]

    def conv(m, inp, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear) for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return total[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="fer2013_cpu30")
    add_threads_arg(ap)
    ap.add_argument("--reps", type=int, default=60, help="batches timed per part")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile timing")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    from lrfer.data.augment import augment_batch
    from lrfer.models import create_model
    from lrfer.train.config import load_config
    from lrfer.train.optim import build_optimizer

    cfg = load_config(args.recipe, device="cpu")
    prov = provenance("bench/cpu_step_profile.py", 0, cpu=cpu_model(), threads=args.threads)
    torch.manual_seed(0)
    size, bs = cfg.image_size, cfg.batch_size
    nhwc = cfg.channels_last and cfg.channels_last_cpu
    images = torch.randint(0, 256, (bs, 1, size, size), dtype=torch.uint8)
    labels = torch.randint(0, 7, (bs,))

    def augment():
        return augment_batch(images.float().div_(255), cfg.augment)

    def timed(fn, reps: int) -> float:
        for _ in range(3):  # warm-up: allocator, oneDNN primitives
            fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    def step_timing(compiled: bool) -> dict:
        model = create_model(cfg.model, num_classes=7, in_chans=1, **cfg.model_kwargs)
        if nhwc:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, cfg)
        forward = torch.compile(model) if compiled else model
        x = augment()
        x = x.contiguous(memory_format=torch.channels_last) if nhwc else x

        def step():
            loss = F.cross_entropy(forward(x), labels, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        t0 = time.perf_counter()
        step()  # eager: the first step; compiled: the compilation
        first = time.perf_counter() - t0
        return {"first_step_s": round(first, 2), "step_ms": round(1000 * timed(step, args.reps), 2)}

    model = create_model(cfg.model, num_classes=7, in_chans=1, **cfg.model_kwargs).eval()
    macs = forward_macs(model, torch.zeros(1, 1, size, size))
    augment_ms = 1000 * timed(augment, args.reps)
    eager = step_timing(False)
    rows = {"eager": eager}
    if not args.no_compile:
        rows["compile"] = step_timing(True)
    for r in rows.values():
        r["images_per_s"] = round(bs / ((augment_ms + r["step_ms"]) / 1000), 1)
        r["train_gflop_per_s"] = round(3 * 2 * macs * bs / (r["step_ms"] / 1000) / 1e9, 1)
    result = {
        "benchmark": "cpu_step_profile",
        "recipe": args.recipe,
        "provenance": prov,
        "model": cfg.model,
        "model_kwargs": cfg.model_kwargs,
        "image_size": size,
        "batch_size": bs,
        "channels_last": nhwc,
        "forward_mflop_per_image": round(2 * macs / 1e6, 1),
        "augment_ms": round(augment_ms, 2),
        "augment_share_of_eager_step": round(augment_ms / (augment_ms + eager["step_ms"]), 4),
        "step": rows,
        "reps": args.reps,
    }
    out = args.out or ROOT / "bench" / "results" / f"cpu_step_profile_{args.recipe}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{args.recipe}: augmentation {augment_ms:.1f} ms per batch of {bs}, "
          + ", ".join(f"{k} step {r['step_ms']:.1f} ms ({r['train_gflop_per_s']} GFLOP/s, {r['images_per_s']} img/s, first step {r['first_step_s']} s)" for k, r in rows.items())
          + f"; wrote {out}")  # fmt: skip


if __name__ == "__main__":
    main()
