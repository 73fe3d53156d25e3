"""Why short schedules stall at chance on FER2013, and which initialisation fixes it.

The shipped model's GPU run sat at chance (~27%) for its first ~8 epochs. A 30-minute CPU recipe
cannot spend a third of its time there. This probe trains the CPU recipe's network (ResNet-18 at
width 16, 32 px faces) for 256 plain SGD steps (2 epochs of the first 8192 training faces, no
augmentation, seed 0) in each variant and scores the first 1000 PublicTest faces after each epoch:

- residual blocks zero-initialised (the last BN of each block starts at 0) or not;
- fixed input normalisation ((x - 0.5) / 0.25) or per-image standardisation;
- batch 64 at lr 0.05 or batch 128 at lr 0.1.

    python bench/short_schedule_probe.py        # ~10 minutes on one core

Writes bench/results/short_schedule_probe.json (provenance, one row per variant).
"""

from __future__ import annotations

import json
import sys
import time

from _common import DATA, ROOT, provenance

OUT = ROOT / "bench" / "results" / "short_schedule_probe.json"
VARIANTS = [  # (zero_init_residual, input_norm, batch, lr)
    (True, "fixed", 64, 0.05),
    (True, "per_image", 64, 0.05),
    (False, "fixed", 64, 0.05),
    (False, "per_image", 64, 0.05),
    (False, "fixed", 128, 0.1),
    (False, "per_image", 128, 0.1),
]


def main() -> None:
    import torch
    import torch.nn.functional as F

    from lrfer.data.readers import load_dataset
    from lrfer.models._registry import create_model

    torch.set_num_threads(1)
    prov = provenance("bench/short_schedule_probe.py", 0)  # the commit the run starts from
    faces = load_dataset(str(DATA))
    train = faces.select_split("Training").resized(32)
    val = faces.select_split("PublicTest").resized(32)
    x, y = train.images[:8192].float() / 255, train.labels[:8192]
    vx, vy = val.images[:1000].float() / 255, val.labels[:1000]
    rows = []
    for zero_init, norm, batch, lr in VARIANTS:
        torch.manual_seed(0)
        model = create_model("resnet18_fer_slim", 7, 1, width=16, input_norm=norm, zero_init_residual=zero_init)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        t0, accs = time.perf_counter(), []
        for _ in range(2):
            model.train()
            for idx in torch.randperm(len(x)).split(batch):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.inference_mode():
                accs.append((model(vx).argmax(1) == vy).float().mean().item())
        row = {"zero_init_residual": zero_init, "input_norm": norm, "batch_size": batch, "lr": lr, "steps": 2 * len(x) // batch,
               "val_acc_per_epoch": accs, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    OUT.write_text(json.dumps({"benchmark": "short_schedule_probe", "provenance": prov, "rows": rows}, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
