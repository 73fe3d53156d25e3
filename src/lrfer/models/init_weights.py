"""Start a freshly built model from weights in a file: every loader of pretrained weights lives here.

- :func:`load_init_weights`: a foreign state dict matched by tensor name (``init_weights`` in a recipe);
- :func:`load_vgg_features`: a torchvision VGG-16 matched layer by layer (LRERNet's ``pretrained_path``);
- :func:`init_from`: an x4 EDSR started from a trained x2 EDSR (Lim et al.);
- :func:`load_sr_model`: the super-resolution front end of a fronted model, from its checkpoint or spec.

The networks in this package only call these; none of them reads a file itself. A foreign weights
file is read by :func:`read_state_dict`, an lrfer checkpoint by :func:`lrfer.models.checkpoint.load_checkpoint`.
:class:`PretrainedPathMixin` keeps a ``pretrained_path`` out of the kwargs a checkpoint records.

:func:`load_init_weights`: the file is a plain state dict from another toolkit: torchvision / timm /
Cadene ``pretrainedmodels`` ``.pth`` files (read with ``torch.load(weights_only=True)``: nothing in the file is executed), a
``.safetensors`` file, or an lrfer checkpoint (its EMA weights when it has them, else its model's:
fine-tuning a trained lrfer model on another dataset). Nested checkpoints (``{"state_dict": ...}``,
``{"model": ...}``) and DataParallel's ``module.`` prefix are unwrapped. Loading is
``strict=False`` with a report:

- names are mapped onto lrfer's (``fc.`` -> ``classifier.``, and the SE-ResNet layouts listed in
  :mod:`lrfer.models.seresnet`);
- a tensor whose name and shape fit is loaded (``matched``);
- an RGB first convolution ``(O, 3, k, k)`` going into a grayscale model ``(O, 1, k, k)`` is summed
  over its input channels (``adapted``): for a grey face replicated to RGB that gives the same
  output, so the pretrained BatchNorm statistics after it still hold (timm's ``adapt_input_conv``
  does the same; the mean would scale the activations by 1/3);
- an lrfer checkpoint's classifier is loaded only when its class names are the new model's, in
  order (``classes``): FER2013's 7 classes and CK+'s 7 are not the same 7, so a classifier that
  merely fits in shape would start every class from another class's weights;
- anything else (the classifier of another class count, a 7x7 stem going into a 3x3 one, names the
  model does not have) is ``skipped``, with the reason; model tensors nobody provided stay as
  initialised (``missing``).

No tensor fitting at all is an error: the file is for another architecture.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import LrferError
from ._registry import create_model, list_models
from ._sr import SRModel, icnr_
from .checkpoint import load_checkpoint, load_weights
from .edsr import EDSR

_NESTED = ("state_dict", "model_state_dict", "model", "module", "net", "params")

# Caffe/MMdnn VGGFace2 SE-ResNet-50 names (conv2_1_1x1_reduce_bn.weight, ...) -> torchvision's.
_CAFFE_BLOCK = re.compile(r"^conv(\d)_(\d+)_(1x1_reduce|3x3|1x1_increase|1x1_down|1x1_up|1x1_proj)(_bn)?\.(.+)$")
_CAFFE_PART = {
    ("1x1_reduce", False): "conv1", ("1x1_reduce", True): "bn1",
    ("3x3", False): "conv2", ("3x3", True): "bn2",
    ("1x1_increase", False): "conv3", ("1x1_increase", True): "bn3",
    ("1x1_down", False): "se.fc1", ("1x1_up", False): "se.fc2",
    ("1x1_proj", False): "downsample.0", ("1x1_proj", True): "downsample.1",
}  # fmt: skip
_PREFIX_ALIASES = (
    ("fc.", "classifier."),  # torchvision / timm
    ("last_linear.", "classifier."),  # Cadene pretrainedmodels
    ("layer0.conv1.", "conv1."),
    ("layer0.bn1.", "bn1."),
    ("conv1_7x7_s2_bn.", "bn1."),  # VGGFace2 (Caffe)
    ("conv1_7x7_s2.", "conv1."),
)


_WEIGHTS_HINT = "save the weights as a plain state dict (torch.save(model.state_dict(), path)) or as .safetensors"


def read_state_dict(path: Union[str, os.PathLike]) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.pt``/``.bin``/``.safetensors`` weights file, unwrapped."""
    p = Path(path)
    if not p.is_file():
        raise LrferError(f"no such weights file: {p}", "give the path of a .pth/.pt (a torch.save'd state dict) or .safetensors file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(p))
        else:
            with warnings.catch_warnings():  # torch warns about the pickle protocol on stderr: a second line
                warnings.simplefilter("ignore")
                obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message advises weights_only=False, i.e. running the file's code: never passed on
        raise LrferError(f"{p} is not a readable weights file (not a tensor archive, or one holding Python objects, whose code lrfer never runs)", _WEIGHTS_HINT) from None
    except Exception as err:  # truncated files, foreign formats: all the user's file
        detail = (str(err).splitlines() or [""])[0][:200]
        raise LrferError(f"{p} is not a readable weights file ({type(err).__name__}: {detail})", _WEIGHTS_HINT) from None
    for _ in range(3):  # {"state_dict": {...}}, {"model": {...}}, ...
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _NESTED if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict):
        raise LrferError(f"{p} holds a {type(obj).__name__}, not a state dict", "save model.state_dict(), not the model object")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for table in ("ema/", "model/"):  # an lrfer checkpoint: its EMA weights when it has them
        if any(k.startswith(table) for k in tensors):
            tensors = {k[len(table) :]: v for k, v in tensors.items() if k.startswith(table)}
            break
    if not tensors:
        raise LrferError(f"{p} holds no tensors", "save model.state_dict()")
    for prefix in ("module.", "model."):  # DataParallel / wrapper prefixes, when every key has them
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def _map_name(key: str, own: set[str]) -> str:
    """The model's name for a foreign key (the key itself when the model has it)."""
    if key in own:
        return key
    m = _CAFFE_BLOCK.match(key)
    if m:
        stage, block, part, bn, leaf = m.groups()
        name = _CAFFE_PART.get((part, bool(bn)))
        if name is not None:
            return f"layer{int(stage) - 1}.{int(block) - 1}.{name}.{leaf}"
    for old, new in _PREFIX_ALIASES:
        if key.startswith(old):
            return new + key[len(old) :]
    return key.replace(".se_module.", ".se.")


def checkpoint_classes(path: Union[str, os.PathLike]) -> Optional[tuple[str, ...]]:
    """The class names an lrfer checkpoint was trained on; None for any other weights file."""
    if Path(path).suffix != ".safetensors":
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = (f.metadata() or {}).get("lrfer")
        return tuple(json.loads(meta)["model"]["classes"]) if meta else None
    except Exception:  # not an lrfer checkpoint after all: read_state_dict reports unreadable files
        return None


def adapt_input_conv(w: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB kernels ``(out, 3, k, k)`` for an ``in_chans`` input (timm's ``adapt_input_conv`` rule).

    Gray: the sum over R, G, B (a gray face replicated to RGB gives the same response, so the
    BatchNorm statistics after it still hold); other counts repeat the kernels, rescaled by 3/in_chans.
    """
    if w.shape[1] == in_chans:
        return w
    if in_chans == 1:
        return w.sum(dim=1, keepdim=True)
    reps = -(-in_chans // w.shape[1])
    return w.repeat(1, reps, 1, 1)[:, :in_chans] * (w.shape[1] / in_chans)


def load_init_weights(model: nn.Module, path: Union[str, os.PathLike], classes: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Load what fits of the weights file at ``path`` into ``model`` (in place) and say what happened.

    ``classes``: the new model's class names; an lrfer checkpoint's classifier is loaded only if
    its own class names are these.

    Returns ``{"matched": [model keys loaded], "adapted": [model keys loaded after RGB->gray or
    BGR->RGB], "skipped": {file key: reason}, "missing": [model keys left as initialised]}``.
    """
    if getattr(model, "wraps_classifier", False):
        # A front end (STN/SR) before a classifier: pretrained weights are the classifier's.
        model = model.net
    source = read_state_dict(path)
    own = model.state_dict()
    names = set(own)
    caffe = any(k.startswith("conv1_7x7_s2") for k in source)  # Caffe VGGFace2: BGR input
    source_classes = checkpoint_classes(path)
    other_classes = source_classes is not None and classes is not None and tuple(classes) != source_classes
    matched: list[str] = []
    adapted: list[str] = []
    skipped: dict[str, str] = {}
    load: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        name = _map_name(key, names)
        if name not in own:
            skipped[key] = "no such tensor in the model"
            continue
        if name in load:
            skipped[key] = f"{name} already loaded from another key"
            continue
        if other_classes and name.startswith("classifier."):
            skipped[key] = f"classifier of other classes ({', '.join(source_classes or ())}; the model's: {', '.join(classes or ())})"
            continue
        want = own[name]
        value = value.detach().to(dtype=want.dtype) if want.is_floating_point() else value.detach()
        notes = []
        if caffe and name == "conv1.weight" and value.ndim == 4 and value.shape[1] == 3:
            value = value.flip(1)
            notes.append("BGR->RGB")
        if value.shape != want.shape and value.ndim == 4 and value.shape[1] == 3 and want.shape[1] == 1 and value.shape[0] == want.shape[0] and value.shape[2:] == want.shape[2:]:
            value = adapt_input_conv(value, 1)
            notes.append("RGB->gray")
        if value.shape != want.shape:
            what = "classifier" if name.startswith("classifier.") else "shape"
            skipped[key] = f"{what} {tuple(value.shape)} does not fit {name} {tuple(want.shape)}"
            continue
        load[name] = value
        matched.append(name)
        if notes:
            adapted.append(f"{name} ({', '.join(notes)})")
    if not matched:
        raise LrferError(
            f"no tensor of {path} fits the model '{getattr(model, 'model_name', type(model).__name__)}' "
            f"(first file keys: {', '.join(list(source)[:3])})",
            "check that the weights are for this architecture (see the model's docstring for the layouts it maps)",
        )
    model.load_state_dict(load, strict=False)
    missing = [k for k in own if k not in load and not k.endswith("num_batches_tracked")]
    return {"matched": matched, "adapted": adapted, "skipped": skipped, "missing": missing}


def load_vgg_features(features: nn.Sequential, state_dict: dict[str, torch.Tensor], in_chans: int, prefix: str = "features.") -> int:
    """Copy torchvision VGG ``features.N.*`` weights into ``features`` layer by layer.

    Conv layers are matched in order (so a VGG-16 file fits a VGG-16-BN model and vice versa);
    BN layers are copied when the file has them too. Returns the number of conv layers loaded.
    """
    pat = re.compile(re.escape(prefix) + r"(\d+)\.(weight|bias|running_mean|running_var)$")
    by_index: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in state_dict.items():
        m = pat.match(k)
        if m:
            by_index.setdefault(int(m.group(1)), {})[m.group(2)] = v
    src_convs = [by_index[i] for i in sorted(by_index) if by_index[i].get("weight") is not None and by_index[i]["weight"].ndim == 4]
    src_bns = [by_index[i] for i in sorted(by_index) if "running_mean" in by_index[i]]
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    bns = [m for m in features if isinstance(m, nn.BatchNorm2d)]
    if len(src_convs) < len(convs):
        raise LrferError(
            f"the pretrained file has {len(src_convs)} '{prefix}N' conv layers, the model needs {len(convs)}",
            "give a torchvision VGG-16 ImageNet state dict (keys features.0.weight, features.2.weight, ...)",
        )
    with torch.no_grad():
        for i, (dst, src) in enumerate(zip(convs, src_convs)):
            w = adapt_input_conv(src["weight"], in_chans) if i == 0 else src["weight"]
            if w.shape != dst.weight.shape:
                raise LrferError(
                    f"pretrained conv layer {i} has shape {tuple(src['weight'].shape)}, the model's is {tuple(dst.weight.shape)}",
                    "give a torchvision VGG-16 state dict",
                )
            dst.weight.copy_(w)
            if dst.bias is not None:
                if "bias" in src:
                    dst.bias.copy_(src["bias"])
                else:
                    dst.bias.zero_()
        if len(src_bns) >= len(bns):
            for dst, src in zip(bns, src_bns):
                dst.weight.copy_(src["weight"])
                dst.bias.copy_(src["bias"])
                dst.running_mean.copy_(src["running_mean"])
                dst.running_var.copy_(src["running_var"])
    return len(convs)


def _as_edsr(model_or_path: Union[nn.Module, str, os.PathLike]) -> EDSR:
    if isinstance(model_or_path, (str, os.PathLike)):
        model_or_path = load_checkpoint(model_or_path).build_model()
    model = getattr(model_or_path, "module", model_or_path)
    model = getattr(model, "_orig_mod", model)
    if not isinstance(model, EDSR):
        raise LrferError(f"expected an EDSR model, got {type(model).__name__}", "give an x2 checkpoint written by `lrfer train-sr`")
    return model


@torch.no_grad()
def init_from(x4_model: nn.Module, x2: Union[nn.Module, str, os.PathLike]) -> list[str]:
    """Initialise an x4 EDSR from a trained x2 EDSR (a model or a checkpoint path), in place.

    Copied: head, body, the first up-sampling stage and the tail convolution (Lim et al. start
    their x4 model from the x2 one the same way). The second x2 stage, which the x2 model does not
    have, is set to nearest-neighbour up-sampling of the features (ICNR with an identity kernel and
    zero bias), so the x4 model starts as "the x2 model's residual features, enlarged once more".
    Returns the names of the copied tensors.
    """
    dst = _as_edsr(x4_model)
    src = _as_edsr(x2)
    if dst.scale != 4 or src.scale != 2:
        raise LrferError(f"init_from copies an x2 model into an x4 model, got x{src.scale} into x{dst.scale}", "pass an x2 EDSR checkpoint")
    if (src.n_feats, src.n_blocks, src.in_chans) != (dst.n_feats, dst.n_blocks, dst.in_chans):
        raise LrferError(
            f"the x2 model has {src.n_blocks} blocks x {src.n_feats} features, {src.in_chans} channels; "
            f"the x4 model {dst.n_blocks} x {dst.n_feats}, {dst.in_chans}",
            "use the same --config for both",
        )
    have = src.state_dict()
    copied = []
    for k, v in dst.state_dict().items():
        if k.startswith("upsample.1."):
            continue
        if k in have and have[k].shape == v.shape:
            v.copy_(have[k])
            copied.append(k)
    stage = dst.upsample[1].conv
    f = dst.n_feats
    dirac = torch.zeros(f, f, 3, 3, dtype=stage.weight.dtype, device=stage.weight.device)
    nn.init.dirac_(dirac)
    icnr_(stage, 2, kernel=dirac, bias=torch.zeros(f, dtype=stage.weight.dtype, device=stage.weight.device))
    return copied


def load_sr_model(sr: Union[str, os.PathLike, dict], in_chans: int) -> tuple[nn.Module, dict]:
    """(SR model, its JSON spec with ``init`` = the weights file) from a path or a spec dict.

    The front end of :class:`lrfer.models.front_end.FrontedModel`; see there for the rules.
    """
    if isinstance(sr, (str, os.PathLike)):
        path = Path(sr)
        if not path.exists():
            raise LrferError(f"no such SR checkpoint: {path}", "train one with `lrfer train-sr`, or pass sr=None")
        ckpt = load_checkpoint(path)
        spec = {"name": ckpt.spec["name"], "in_chans": ckpt.spec["in_chans"], **ckpt.spec["kwargs"], "init": str(path)}
    elif isinstance(sr, dict):
        if "name" not in sr:
            raise LrferError(f"sr spec {sr} has no 'name'", 'write e.g. sr = { name = "edsr_light", scale = 2 }')
        spec = dict(sr)
        ckpt = None
        init = spec.get("init")
        if init and Path(init).exists():
            ckpt = load_checkpoint(init)
    else:
        raise LrferError(f"sr must be a checkpoint path or a model spec, got {type(sr).__name__}", "pass a .safetensors path from `lrfer train-sr`")
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "in_chans", "init")}
    spec.setdefault("in_chans", in_chans)
    model = create_model(spec["name"], num_classes=0, in_chans=spec["in_chans"], **kwargs)
    if not isinstance(model, SRModel):
        raise LrferError(f"'{spec['name']}' is not a super-resolution model", "use one of " + ", ".join(list_models("sr")))
    if spec["in_chans"] not in (in_chans, 1):
        raise LrferError(f"the SR model takes {spec['in_chans']} channels, the faces have {in_chans}", "train the SR model on faces with the same channels")
    if ckpt is not None:
        load_weights(model, ckpt, "ema" if ckpt.has_ema else "model")
    return model, spec


class PretrainedPathMixin:
    """Keep ``pretrained_path`` out of the kwargs a checkpoint records.

    ``create_model`` stores its kwargs on the model and checkpoints rebuild the model from them;
    a checkpoint already holds the trained weights, and rebuilding it elsewhere must not need
    (or re-read) the ImageNet file, so the path is dropped when the kwargs are recorded.
    """

    @property
    def model_kwargs(self) -> dict:
        return self.__dict__.get("_model_kwargs", {})

    @model_kwargs.setter
    def model_kwargs(self, kwargs: dict) -> None:
        self.__dict__["_model_kwargs"] = without_pretrained_path(kwargs)


def without_pretrained_path(kwargs: dict) -> dict:
    """``kwargs`` less ``pretrained_path``: the rule of :class:`PretrainedPathMixin`, for models that wrap one."""
    return {k: v for k, v in kwargs.items() if k != "pretrained_path"}
