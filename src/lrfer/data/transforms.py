"""Batched prediction with optional test-time augmentation and degradation.

One code path (:func:`_predict`) serves :func:`predict_proba` and :func:`predict_logits`; the
resolution sweep and the evaluation report call it with ``degrade_to`` / ``tta`` set.

Per batch, in this order:

1. uint8 images are moved to the device and scaled to float [0, 1] there (moving uint8 is 4x
   less traffic than moving float);
2. if ``input_size`` is given and differs from the images' size, they are resized by
   :func:`lrfer.data.augment.resize_faces` (bilinear, antialiased when shrinking so that e.g.
   100 px RAF-DB faces do not alias on their way to 48), the resize training uses too;
3. if ``degrade_to`` is given, :func:`lrfer.data.augment.degrade` simulates a face seen at that
   many pixels (relative to the model's input, so "16 px" means the same for every dataset);
4. the test-time views are built (centre / ten crops of ``crop`` px, horizontal flips), run as
   one concatenated batch, and averaged.

Steps 1-3 are :func:`preprocess` and the loop is :func:`predict_views`, which takes any function
from a batch of views to per-view outputs. The ONNX runtime, which must not import torch, does the
same in numpy (:mod:`lrfer.runtime.faces`: the TTA names and view layout are defined there and
used here; the two are tested to give the same probabilities to 1e-4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal, Optional, Union

import numpy as np
import torch
from torch import nn

from ..errors import LrferError
from ..progress import Progress, report
from ..runtime.faces import CPU_BATCH, Size, check_tta, crop_offsets, size_hw
from .augment import degrade, resize_faces

TTA = Literal["none", "flip", "tencrop"]

#: Faces per forward pass on a GPU when the caller names none (on a CPU: :data:`CPU_BATCH`).
GPU_BATCH = 512


def resolve_batch_size(batch_size: Optional[int], device: Union[str, torch.device, None]) -> int:
    """``batch_size``, or the default for ``device`` (:data:`CPU_BATCH` on a CPU) if it is ``None``."""
    if batch_size is None:
        return GPU_BATCH if device is not None and torch.device(device).type == "cuda" else CPU_BATCH
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return batch_size


def tta_views(tta: str, crop: Optional[Size] = None) -> int:
    """How many forward passes per face a TTA setting costs (for latency bookkeeping)."""
    check_tta(tta, crop)
    return {"none": 1, "flip": 2, "tencrop": 10}[tta]


def _crops(x: torch.Tensor, crop: Optional[Size], tta: str) -> list[torch.Tensor]:
    """Centre crop (or the four corners + centre for ten-crop); the whole image if no crop."""
    if crop is None:
        return [x]
    ch, cw = size_hw(crop)
    return [x[..., t : t + ch, l : l + cw] for t, l in crop_offsets(x.shape[-2], x.shape[-1], crop, tta)]


def make_views(x: torch.Tensor, tta: str, crop: Optional[Size]) -> list[torch.Tensor]:
    views = _crops(x, crop, tta)
    if tta in ("flip", "tencrop"):
        views = views + [v.flip(-1) for v in views]
    return views


def model_device(model: nn.Module) -> torch.device:
    """The device of the first parameter (or buffer) of ``model``; the CPU if it has none."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _nhwc(device: torch.device, channels_last: Optional[bool]) -> bool:
    """Whether to run in NHWC: as asked, or on CUDA only when ``channels_last`` is ``None``."""
    return device.type == "cuda" if channels_last is None else channels_last


@contextlib.contextmanager
def inference_setup(model: nn.Module, device: torch.device, channels_last: Optional[bool] = None) -> Iterator[None]:
    """eval() (and channels_last weights if asked; ``None``: on CUDA) for the duration; the
    caller's state comes back.

    The memory format is restored because channels_last weights are not contiguous, and a later
    ``safetensors`` save of the same model would refuse them. A model the caller already put in
    channels_last (some 4-d weight not in the standard layout) is left as it is.
    """
    was_training = model.training
    weights_4d = [p for p in model.parameters() if p.ndim == 4]
    convert = _nhwc(device, channels_last) and bool(weights_4d) and all(p.is_contiguous() for p in weights_4d)
    model.eval()
    if convert:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)
        model.train(was_training)


def as_tensor(images: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(getattr(x, "shape", ()))
        raise ValueError(f"images must be a (N, C, H, W) tensor or array, got shape {shape}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"images must be uint8 (0-255) or float in [0, 1], got {x.dtype}")
    return x


def match_channels(x: torch.Tensor, model: Union[nn.Module, int, None]) -> torch.Tensor:
    """``x`` in the channel count of ``model`` (a module with ``in_chans``, or the count itself)."""
    want = model if isinstance(model, int) or model is None else getattr(model, "in_chans", None)
    have = x.shape[1]
    if not isinstance(want, int) or want == have:
        return x
    if have == 1 and want == 3:
        return x.expand(-1, 3, -1, -1)  # grey replicated to RGB is exactly what an RGB camera sees of a grey face
    raise LrferError(
        f"the model takes {want}-channel images, these have {have}",
        "convert the faces with FaceSet.to_grayscale()" if want == 1 else "use faces with the model's channel count",
    )


def preprocess(
    xb: torch.Tensor,
    *,
    in_chans: Optional[int],
    input_size: Optional[Size],
    degrade_to: Optional[int] = None,
    degrade_mode: str = "bilinear",
) -> torch.Tensor:
    """Steps 1-3 on one batch: uint8 (or float [0, 1]) faces to float [0, 1] in ``in_chans``
    channels at ``input_size`` (``None``: as they are), degraded to ``degrade_to`` px if given."""
    xb = xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb.float()
    xb = match_channels(xb, in_chans)
    if input_size is not None:
        xb = resize_faces(xb, size_hw(input_size))
    if degrade_to is not None:
        xb = degrade(xb, int(degrade_to), degrade_mode)
    return xb


def model_input(
    images: Union[torch.Tensor, np.ndarray],
    *,
    in_chans: Optional[int],
    input_size: Optional[Size],
    crop: Optional[Size] = None,
) -> torch.Tensor:
    """The float ``(N, C, S, S)`` tensor a model is fed for these faces without TTA:
    :func:`preprocess` and the centre crop (e.g. calibration data for a quantized export)."""
    x = preprocess(as_tensor(images), in_chans=in_chans, input_size=input_size)
    return make_views(x, "none", crop)[0].contiguous()


def predict_views(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: Union[torch.Tensor, np.ndarray],
    *,
    num_classes: int,
    in_chans: Optional[int],
    batch_size: Optional[int] = None,
    device: Union[str, torch.device] = "cpu",
    tta: str = "none",
    crop: Optional[Size] = None,
    input_size: Optional[Size] = None,
    degrade_to: Optional[int] = None,
    degrade_mode: str = "bilinear",
    progress: Optional[Progress] = None,
    task: str = "predict",
) -> torch.Tensor:
    """The batching loop shared by every backend: :func:`preprocess`, the TTA views, ``forward``,
    and the mean over views; ``(N, num_classes)`` float32 on the CPU.

    ``forward`` maps the concatenated views ``(V * B, C, S, S)`` (float [0, 1], on ``device``) to
    per-view outputs ``(V * B, num_classes)``: probabilities or logits, which are averaged as they
    are. The other arguments are those of :func:`predict_proba`.
    """
    check_tta(tta, crop)
    x_all = as_tensor(images)
    device = torch.device(device)
    batch_size = resolve_batch_size(batch_size, device)
    n = len(x_all)
    if n == 0:
        return torch.empty(0, num_classes, dtype=torch.float32)
    outputs: list[torch.Tensor] = []
    for start in range(0, n, batch_size):
        xb = x_all[start : start + batch_size].to(device, non_blocking=True)
        xb = preprocess(xb, in_chans=in_chans, input_size=input_size, degrade_to=degrade_to, degrade_mode=degrade_mode)
        views = make_views(xb, tta, crop)
        batch = torch.cat(views) if len(views) > 1 else views[0]
        outputs.append(forward(batch).float().reshape(len(views), len(xb), -1).mean(0))
        report(progress, task, min(start + batch_size, n), n)
    # One device-to-host copy at the end instead of a synchronising copy per batch.
    return torch.cat(outputs).cpu()


def _predict(
    model: nn.Module,
    images: Union[torch.Tensor, np.ndarray],
    *,
    output: Literal["proba", "logits", "embedding"],
    batch_size: Optional[int],
    device: Optional[Union[str, torch.device]],
    tta: str,
    crop: Optional[Size],
    input_size: Optional[Size],
    degrade_to: Optional[int],
    degrade_mode: str,
    progress: Optional[Progress],
    task: str,
    temperature: float = 1.0,
    channels_last: Optional[bool] = None,
) -> torch.Tensor:
    check_tta(tta, crop)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if device is None:
        device = model_device(model)
    else:
        device = torch.device(device)
        model.to(device)  # outside inference_mode, see below

    on_cuda = device.type == "cuda"
    nhwc = _nhwc(device, channels_last)
    # bf16 autocast on CUDA only: it is the fast path on recent GPUs and needs no loss scaling;
    # on CPU it is slower than fp32 for these small convnets, so CPU runs in fp32.
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()

    def forward(batch: torch.Tensor) -> torch.Tensor:
        if nhwc:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if output == "embedding":
            return model.embed_and_classify(batch)[0].float()
        logits = model(batch).float()
        # Ten-crop / flip averaging is done on probabilities (the usual protocol), each view
        # temperature-scaled first; for logits output the views' logits are averaged instead,
        # which keeps them valid logits.
        return (logits / temperature).softmax(-1) if output == "proba" else logits

    # Moving the model / changing its memory format must happen outside inference_mode: weights
    # converted inside it would become inference tensors that a later training step cannot use.
    with inference_setup(model, device, nhwc), torch.inference_mode(), amp:
        return predict_views(
            forward, images, num_classes=int(model.num_features if output == "embedding" else getattr(model, "num_classes", 0)),
            in_chans=getattr(model, "in_chans", None),
            batch_size=batch_size, device=device, tta=tta, crop=crop, input_size=input_size,
            degrade_to=degrade_to, degrade_mode=degrade_mode, progress=progress, task=task,
        )  # fmt: skip


def predict_proba(
    model: nn.Module,
    images: Union[torch.Tensor, np.ndarray],
    *,
    batch_size: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    tta: TTA = "none",
    crop: Optional[Size] = None,
    input_size: Optional[Size] = None,
    degrade_to: Optional[int] = None,
    degrade_mode: str = "bilinear",
    progress: Optional[Progress] = None,
    task: str = "predict",
    temperature: float = 1.0,
    channels_last: Optional[bool] = None,
) -> torch.Tensor:
    """Class probabilities ``(N, K)`` float32 on the CPU.

    ``images``: uint8 ``(N, C, H, W)`` (or float in [0, 1]), on any device; converted per batch.
    ``batch_size``: faces per forward pass; ``None``: :data:`GPU_BATCH` on CUDA, :data:`CPU_BATCH`
    elsewhere.
    ``device``: where to run; ``None`` runs where the model is, otherwise the model is moved
    there (in place). The model is put in eval mode for the call and its mode restored after.
    ``tta``: ``"none"``; ``"flip"`` averages with the horizontal mirror; ``"tencrop"`` averages the
    softmax of the four corner and the centre ``crop`` x ``crop`` crops and their mirrors.
    ``crop``: the crop size the model was trained on (e.g. 44 for 48 px faces); required by
    ``"tencrop"``; with ``"none"``/``"flip"`` it selects a centre crop.
    ``input_size``: the model's expected input (e.g. 48); faces of another size are resized
    first, by :func:`lrfer.data.augment.resize_faces` as in training. ``None`` feeds the faces at
    their own size.
    ``degrade_to``: simulate faces of that many pixels with :func:`lrfer.data.augment.degrade`
    (after the resize, before the crops); ``None`` or a size >= the input leaves them as they are.
    ``progress``: callback receiving ``task`` events counting faces done.
    ``temperature``: divides the logits before the softmax (see :mod:`lrfer.evaluate.calibration`).
    ``channels_last``: run the convolutions in NHWC (weights converted for the call); ``None``:
    on CUDA only. On a CPU it pays for some networks (the shipped one: 1.3x in batches of 128 on 2
    threads, ``bench/results/cpu_predict_batch.json``), not for all, so there the caller decides
    (the trainer follows ``channels_last_cpu``).
    """
    return _predict(
        model, images, output="proba", batch_size=batch_size, device=device, tta=tta, crop=crop,
        input_size=input_size, degrade_to=degrade_to, degrade_mode=degrade_mode, progress=progress, task=task,
        temperature=temperature, channels_last=channels_last,
    )  # fmt: skip


def predict_logits(
    model: nn.Module,
    images: Union[torch.Tensor, np.ndarray],
    *,
    batch_size: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    tta: TTA = "none",
    crop: Optional[Size] = None,
    input_size: Optional[Size] = None,
    degrade_to: Optional[int] = None,
    degrade_mode: str = "bilinear",
    progress: Optional[Progress] = None,
    task: str = "predict",
    channels_last: Optional[bool] = None,
) -> torch.Tensor:
    """Logits ``(N, K)`` float32 on the CPU; same arguments as :func:`predict_proba`.

    With TTA the views' logits are averaged (e.g. for temperature scaling or logit ensembles);
    ``softmax`` of this average is close to, but not the same as, ``predict_proba``'s average.
    """
    return _predict(
        model, images, output="logits", batch_size=batch_size, device=device, tta=tta, crop=crop,
        input_size=input_size, degrade_to=degrade_to, degrade_mode=degrade_mode, progress=progress, task=task,
        channels_last=channels_last,
    )  # fmt: skip


def predict_embeddings(
    model: nn.Module,
    images: Union[torch.Tensor, np.ndarray],
    *,
    batch_size: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    crop: Optional[Size] = None,
    input_size: Optional[Size] = None,
    degrade_to: Optional[int] = None,
    progress: Optional[Progress] = None,
    task: str = "embed",
) -> torch.Tensor:
    """The pre-logits embeddings ``(N, model.num_features)`` float32 on the CPU, what the classifier
    head reads (a new head is fitted on them: :mod:`lrfer.train.reading`); same arguments as
    :func:`predict_proba`, without TTA."""
    return _predict(
        model, images, output="embedding", batch_size=batch_size, device=device, tta="none", crop=crop,
        input_size=input_size, degrade_to=degrade_to, degrade_mode="bilinear", progress=progress, task=task,
    )  # fmt: skip
