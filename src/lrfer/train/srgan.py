"""SRGAN training on faces (Ledig et al. 2017), the super-resolution stage of Liu, Zhang & Xin
(2019)'s model B: an SRResNet generator (:mod:`lrfer.models.srgan`) trained against the SRGAN
discriminator with a content loss on a frozen feature network plus an adversarial loss.

Data, evaluation and outputs are those of :mod:`lrfer.train.sr` (its functions are reused, not
copied): HR targets are the training faces at ``hr_size`` (or ``patch`` crops), the LR input their
area down-sampling by the scale (the library's degradation), horizontal flips; PSNR / SSIM against
bicubic on held-out faces at x2 and x4 in ``sr_report.json``; self-describing checkpoints that
``create_model("fronted", sr=PATH)`` and ``create_model("resnet50sr", sr=PATH)`` take as their SR.

Losses (Ledig et al.'s perceptual loss, section 2.2):

- content: ``MSE(s * phi(G(lr)), s * phi(hr))`` on the feature maps ``phi`` of a frozen network in
  eval mode. ``phi`` is pluggable (ImageNet VGG weights cannot be fetched here):
  * default: ``forward_features`` of a trained lrfer FER classifier checkpoint, the shipped default
    model unless ``feature_net`` names another. ``s`` (``feature_scale = 0``: automatic) is
    ``1 / RMS(phi(hr))`` measured once on the first training batch, so the loss is the squared
    feature error relative to the features' own size: a FER network's feature magnitude depends
    on its training and has no published constant;
  * a torchvision VGG-19 ImageNet state dict (``vgg19`` or ``vgg19_bn`` layout, keys
    ``features.N.*``): the features up to relu5_4 (Ledig et al.'s VGG54), ImageNet-normalised
    input (a grey face replicated to RGB), and Ledig et al.'s rescaling ``s = 1 / 12.75``.
- adversarial: ``-log D(G(lr))`` (the non-saturating generator loss) with weight ``adv_weight`` =
  1e-3, as SRGAN; the discriminator minimises the usual binary cross-entropy on real HR and
  generated faces, one discriminator step per generator step.
- optional ``pixel_weight * MSE(G(lr), hr)`` in the adversarial phase (0 by default, as SRGAN).

Schedule: ``pretrain_epochs`` epochs of pixel MSE only (the SRResNet-MSE warm start: Ledig et al.
initialise SRGAN from their MSE-trained SRResNet to avoid poor local optima), then ``epochs``
adversarial epochs. Adam (0.9, 0.999), eps 1e-8, batch 16 and lr 1e-4 for both networks; in the
adversarial phase the rate drops to 1e-5 after ``lr_step`` epochs (Ledig et al.: 1e5 updates at
1e-4, then 1e5 at 1e-5; the defaults 20 epochs with a step at 10 keep that shape). The MSE phase
keeps 1e-4 (Ledig et al.'s SRResNet rate throughout). ``init_from`` starts the generator from an
SR checkpoint of the same configuration and scale (e.g. the ``pretrain.safetensors`` of an earlier
run) instead.

Selection: the adversarial phase is not trying to maximise PSNR (SRGAN's PSNR is below SRResNet's
by design), so ``best.safetensors`` is the adversarial epoch with the lowest **validation content
loss** (the feature-space error the downstream classifier cares about); its PSNR / SSIM are
reported all the same. ``pretrain.safetensors`` is the generator at the end of the MSE phase (the
SRResNet), reported beside it.

Outputs in ``out_dir``: ``best.safetensors``, ``last.safetensors``, ``pretrain.safetensors`` (with
``pretrain_epochs``), ``metrics.jsonl`` (one row per epoch, ``phase`` "pretrain" or "gan"),
``config.json`` and ``sr_report.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import luma
from ..data.faceset import FaceSet
from ..data.transforms import match_channels
from ..device import resolve_device
from ..errors import LrferError
from ..files import atomic_write_text
from ..models import create_model, list_models
from ..models.checkpoint import load_checkpoint, load_weights, model_spec, save_checkpoint
from ..models.init_weights import read_state_dict
from ..models.srgan import DISCRIMINATOR_CONFIGS, srgan_discriminator
from ..predict.classifier import DEFAULT_CHECKPOINT
from ..progress import Progress, report
from .run import Run
from .sr import SRConfig, SRResult, bicubic_upscale, checkpoint_report, downscale, epoch_lr, evaluate_sr, hr_batches, prepare_sr_data

#: ``--config`` name -> registered generator.
SRGAN_CONFIGS = {"light": "srresnet_light", "paper": "srresnet"}
#: Ledig et al.'s rescaling of the VGG feature maps ("to obtain VGG losses of a scale comparable to the MSE loss").
VGG_FEATURE_SCALE = 1 / 12.75
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_NET_HINT = (
    "give an lrfer classifier checkpoint (.safetensors from `lrfer train`), a torchvision VGG-19 ImageNet "
    "state dict (.pth), or leave --feature-net out for the shipped classifier"
)


# ---------------------------------------------------------------------------- config
@dataclass
class SRGANConfig(SRConfig):
    """Settings of :func:`train_srgan`: :class:`~lrfer.train.sr.SRConfig`'s, with SRGAN's defaults and losses."""

    epochs: int = 20  # adversarial-phase epochs
    lr_step: int = 10  # adversarial epochs before the rate drops
    lr_gamma: float = 0.1  # 1e-4 -> 1e-5 (Ledig et al.)
    pretrain_epochs: int = 0  # pixel-MSE SRResNet warm start before the adversarial phase
    feature_net: str = ""  # "": the shipped classifier; an lrfer classifier checkpoint; a torchvision VGG-19 state dict
    feature_scale: float = 0.0  # s in MSE(s*phi(sr), s*phi(hr)); 0: automatic (see the module docstring)
    content_weight: float = 1.0
    adv_weight: float = 1e-3  # SRGAN's
    pixel_weight: float = 0.0  # pixel MSE added in the adversarial phase (0: SRGAN's loss)
    discriminator: str = ""  # paper (64..512, dense 1024) | light (16..128, 256); "": same as config
    d_lr: float = 0.0  # discriminator learning rate (0: lr)
    init_from: str = ""  # an SR checkpoint of the same config and scale to start the generator from

    @property
    def model(self) -> str:
        return SRGAN_CONFIGS[self.config]

    @property
    def discriminator_config(self) -> str:
        return self.discriminator or self.config

    def validate(self) -> "SRGANConfig":
        # SRConfig's checks (config, scale, sizes, batch); its init_from means "x2 EDSR into x4", not ours
        SRConfig.validate(dataclasses.replace(self, init_from="", epochs=max(1, self.epochs)))
        if self.epochs < 1:
            raise LrferError(f"SRGAN training needs at least one adversarial epoch, got epochs={self.epochs}", "use --epochs 1 or more")
        if self.pretrain_epochs < 0:
            raise LrferError(f"pretrain_epochs {self.pretrain_epochs} is negative", "use --pretrain-epochs 0 or more")
        if min(self.content_weight, self.adv_weight, self.pixel_weight, self.feature_scale, self.d_lr) < 0:
            raise LrferError("loss weights, feature_scale and d_lr must not be negative", "check the SRGAN settings")
        if self.content_weight == 0 and self.pixel_weight == 0:
            raise LrferError("the generator needs a content or a pixel loss", "keep content_weight = 1 (SRGAN)")
        if self.discriminator_config not in DISCRIMINATOR_CONFIGS:
            raise LrferError(f"discriminator '{self.discriminator}' is not one of {', '.join(DISCRIMINATOR_CONFIGS)}", "use 'paper' or 'light'")
        if self.feature_net and not Path(self.feature_net).is_file():
            raise LrferError(f"no such feature network file: {self.feature_net}", FEATURE_NET_HINT)
        if self.init_from and not Path(self.init_from).is_file():
            raise LrferError(f"no such generator checkpoint: {self.init_from}", "give an SR checkpoint written by `lrfer train-sr --gan`")
        return self


@dataclass
class SRGANResult(SRResult):
    best_content: float = math.nan  # validation content loss of the best epoch
    pretrain_path: Optional[Path] = None
    feature_scale: float = math.nan


# ---------------------------------------------------------------------------- feature networks
class ContentFeatures(nn.Module):
    """A frozen feature network for the content loss: faces in [0, 1] ``(B, C, H, W)`` -> feature maps.

    ``kind`` is ``"classifier"`` (an lrfer FER model: ``forward_features(normalize(x))``) or
    ``"vgg19"`` (torchvision VGG-19 features up to relu5_4 on ImageNet-normalised RGB). It stays in
    eval mode and without gradients for its weights whatever ``train()`` says; gradients still flow
    through it to its input.
    """

    def __init__(self, net: nn.Module, kind: str, in_chans: int, source: str, default_scale: float = 0.0):
        super().__init__()
        self.net = net
        self.kind = kind
        self.in_chans = in_chans
        self.source = source
        self.default_scale = default_scale  # 0: measure on data (classifier features)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.net.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> "ContentFeatures":
        super().train(mode)
        self.net.eval()  # frozen: BN statistics and dropout fixed
        return self

    def describe(self) -> str:
        what = "VGG-19 features up to relu5_4" if self.kind == "vgg19" else f"forward_features of '{getattr(self.net, 'model_name', type(self.net).__name__)}'"
        return f"{what} from {self.source}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3 and self.in_chans == 1:
            # colour faces, a grey feature net: ITU-R 601 luma, as FaceSet.to_grayscale, kept
            # differentiable (match_channels refuses this case: inference wants it done on the data)
            x = luma(x)
        x = match_channels(x, self.in_chans)  # grey faces, an RGB feature net: replicated
        if self.kind == "vgg19":
            return self.net((x - self.mean) / self.std)
        return self.net.forward_features(self.net.normalize(x))


def vgg19_relu54(state_dict: dict[str, torch.Tensor], source: str = "the file") -> nn.Sequential:
    """torchvision's VGG-19 (or VGG-19-BN) ``features`` up to relu5_4, loaded from a state dict.

    Built with torchvision's own ``make_layers`` so module indices, and the ``features.N.*`` keys of
    its ImageNet files, match; the BN variant is chosen when the file has BN statistics.
    """
    from torchvision.models.vgg import cfgs, make_layers

    bn = any(k.startswith("features.") and k.endswith("running_mean") for k in state_dict)
    full = make_layers(cfgs["E"], batch_norm=bn)
    convs, cut = 0, len(full)
    for i, m in enumerate(full):
        convs += isinstance(m, nn.Conv2d)
        if convs == 16 and isinstance(m, nn.ReLU):  # relu5_4: before the fifth max-pool (Ledig's phi_5,4)
            cut = i + 1
            break
    features = full[:cut]
    want = features.state_dict()
    have = {k[len("features.") :]: v for k, v in state_dict.items() if k.startswith("features.")}
    missing = [k for k in want if k not in have]
    shape = [k for k in want if k in have and have[k].shape != want[k].shape]
    if missing or shape:
        raise LrferError(
            f"{source} is not a torchvision VGG-19 state dict: of the {len(want)} tensors of its features up to relu5_4, "
            f"{len(missing)} are missing and {len(shape)} have another shape",
            FEATURE_NET_HINT,
        )
    features.load_state_dict({k: have[k].float() for k in want})
    return features


def load_feature_net(source: str = "") -> ContentFeatures:
    """The content-loss network: ``""`` the shipped classifier, an lrfer classifier checkpoint, or a VGG-19 state dict."""

    path = Path(source) if source else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise LrferError(f"no such feature network file: {path}", FEATURE_NET_HINT)
    ckpt = None
    if path.suffix == ".safetensors":
        try:
            ckpt = load_checkpoint(path)
        except LrferError:  # a safetensors file without lrfer metadata: a plain (VGG) state dict
            ckpt = None
    if ckpt is not None:
        if ckpt.spec["name"] in list_models("sr"):
            raise LrferError(f"{path} holds the super-resolution model '{ckpt.spec['name']}', not a classifier", FEATURE_NET_HINT)
        net = ckpt.build_model()
        if not hasattr(net, "forward_features"):
            raise LrferError(f"'{ckpt.spec['name']}' in {path} has no forward_features", FEATURE_NET_HINT)
        return ContentFeatures(net, "classifier", int(ckpt.spec["in_chans"]), str(path))
    return ContentFeatures(vgg19_relu54(read_state_dict(path), str(path)), "vgg19", 3, str(path), VGG_FEATURE_SCALE)


@torch.no_grad()
def measure_feature_scale(features: ContentFeatures, hr: torch.Tensor) -> float:
    """``1 / RMS(phi(hr))``: the scale that makes the content loss a relative squared feature error."""
    rms = float(features(hr).pow(2).mean().sqrt())
    if not math.isfinite(rms) or rms <= 0:
        raise LrferError(f"the feature network's features on the training faces have RMS {rms}", "give another feature network (--feature-net)")
    return 1.0 / rms


# ---------------------------------------------------------------------------- the optimisation steps
class SRGANTrainer:
    """The generator and discriminator steps of SRGAN training on HR batches in [0, 1].

    ``pretrain_step`` is one pixel-MSE step of the generator (SRResNet); ``gan_step`` one
    discriminator step then one generator step (content + adversarial [+ pixel] loss).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, features: ContentFeatures, cfg: SRGANConfig, feature_scale: float):
        self.g, self.d, self.features, self.cfg = generator, discriminator, features, cfg
        self.feature_scale = feature_scale
        betas, eps = tuple(cfg.betas), cfg.eps
        self.opt_pre = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=betas, eps=eps)
        # a fresh generator optimiser for the adversarial phase: it starts from the SRResNet weights, not its Adam moments
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=betas, eps=eps)
        self.opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.d_lr or cfg.lr, betas=betas, eps=eps)

    def state_dict(self) -> dict:
        """What resuming needs besides the generator's weights: the discriminator and the three optimisers."""
        return {"discriminator": self.d.state_dict(), "opt_pre": self.opt_pre.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.d.load_state_dict(state["discriminator"])
        for name in ("opt_pre", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])

    def set_lr(self, lr: float) -> None:
        d_ratio = (self.cfg.d_lr or self.cfg.lr) / self.cfg.lr
        for opt, r in ((self.opt_pre, 1.0), (self.opt_g, 1.0), (self.opt_d, d_ratio)):
            for group in opt.param_groups:
                group["lr"] = lr * r

    def content_loss(self, sr: torch.Tensor, hr: torch.Tensor, hr_features: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``MSE(s * phi(sr), s * phi(hr))`` (differentiable in ``sr``; ``phi(hr)`` is a constant)."""
        if hr_features is None:
            with torch.no_grad():
                hr_features = self.features(hr)
        s = self.feature_scale
        return F.mse_loss(self.features(sr) * s, hr_features * s)

    def pretrain_step(self, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        self.g.train()
        loss = F.mse_loss(self.g(downscale(hr, self.cfg.scale)), hr)
        self.opt_pre.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_pre.step()
        return {"mse": loss.detach()}

    def gan_step(self, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        self.g.train()
        self.d.train()
        sr = self.g(downscale(hr, cfg.scale))
        # discriminator: real HR faces -> 1, generated -> 0
        self.d.requires_grad_(True)
        d_real, d_fake = self.d(hr), self.d(sr.detach())
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # generator: content + 1e-3 * (-log D(G(lr))) [+ pixel MSE]; no gradients into D's weights
        self.d.requires_grad_(False)
        d_gen = self.d(sr)
        adv = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        content = self.content_loss(sr, hr) if cfg.content_weight > 0 else sr.new_zeros(())
        pixel = F.mse_loss(sr, hr) if cfg.pixel_weight > 0 else sr.new_zeros(())
        g_loss = cfg.content_weight * content + cfg.adv_weight * adv + cfg.pixel_weight * pixel
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        return {
            "content": content.detach(),
            "adv": adv.detach(),
            "pixel": pixel.detach(),
            "d_loss": d_loss.detach(),
            "d_real": torch.sigmoid(d_real.detach()).mean(),
            "d_fake": torch.sigmoid(d_fake.detach()).mean(),
        }

    @torch.no_grad()
    def val_content(self, images: torch.Tensor, batch_size: int = 256, bicubic: bool = False) -> float:
        """Mean content loss on uint8 HR faces ``(N, C, H, W)`` of the generator (or of bicubic up-sampling)."""
        was_training = self.g.training
        self.g.eval()
        device = next(self.g.parameters()).device
        total = 0.0
        for start in range(0, len(images), batch_size):
            hr = images[start : start + batch_size].to(device).float().div_(255)
            lr = downscale(hr, self.cfg.scale)
            sr = bicubic_upscale(lr, self.cfg.scale) if bicubic else self.g(lr).clamp(0, 1)
            total += float(self.content_loss(sr, hr)) * len(hr)
        self.g.train(was_training)
        return total / max(1, len(images))


# ---------------------------------------------------------------------------- training
def _pretrain_epoch(trainer: SRGANTrainer, images: torch.Tensor, cfg: SRGANConfig, epoch: int, bs: int, steps: int, progress: Optional[Progress]) -> dict:
    """One pixel-MSE epoch of the generator (SRResNet: Ledig et al.'s warm start): the training half of its row."""
    trainer.set_lr(cfg.lr)
    loss_sum, t0 = torch.zeros((), device=images.device), time.perf_counter()
    for i, hr in enumerate(hr_batches(images, cfg, epoch, bs, steps)):
        loss_sum += trainer.pretrain_step(hr)["mse"]
        if (i + 1) % 20 == 0 or i + 1 == steps:
            report(progress, f"srgan pretrain {epoch}/{cfg.pretrain_epochs}", i + 1, steps)
    return {"phase": "pretrain", "epoch": epoch, "lr": cfg.lr, "train_mse": float(loss_sum) / steps, "images_per_s": steps * bs / (time.perf_counter() - t0)}


def _gan_epoch(trainer: SRGANTrainer, images: torch.Tensor, cfg: SRGANConfig, epoch: int, bs: int, steps: int, progress: Optional[Progress]) -> dict:
    """One adversarial epoch (``epoch`` counts from 1 after the pre-training): the training half of its row."""
    lr = epoch_lr(cfg, epoch)
    trainer.set_lr(lr)
    sums: dict[str, torch.Tensor] = {}
    t0 = time.perf_counter()
    # epochs are numbered after the pre-training ones for the draws: every epoch sees another order
    for i, hr in enumerate(hr_batches(images, cfg, cfg.pretrain_epochs + epoch, bs, steps)):
        for k, v in trainer.gan_step(hr).items():
            sums[k] = sums.get(k, 0) + v
        if (i + 1) % 20 == 0 or i + 1 == steps:
            report(progress, f"srgan epoch {epoch}/{cfg.epochs}", i + 1, steps)
    return {"phase": "gan", "epoch": epoch, "lr": lr, **{f"train_{k}": float(v) / steps for k, v in sums.items()}, "images_per_s": steps * bs / (time.perf_counter() - t0)}


def _validate(trainer: SRGANTrainer, val_set: FaceSet, cfg: SRGANConfig, device: torch.device) -> dict:
    """The validation half of an epoch's row: PSNR / SSIM against bicubic, and the content loss."""
    val = evaluate_sr(trainer.g, val_set.images, cfg.scale, batch_size=cfg.eval_batch_size, device=device)
    return {"val_psnr": val["psnr"], "val_ssim": val["ssim"], "bicubic_psnr": val["bicubic_psnr"], "val_content": trainer.val_content(val_set.images, cfg.eval_batch_size)}


def _setup(cfg: SRGANConfig, in_chans: int, device: torch.device) -> tuple[nn.Module, nn.Module, dict]:
    """(generator, discriminator, the generator's checkpoint spec), seeded by ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    generator = create_model(cfg.model, num_classes=0, in_chans=in_chans, scale=cfg.scale, **cfg.model_kwargs)
    if cfg.init_from:
        start = load_checkpoint(cfg.init_from)
        load_weights(generator, start, "ema" if start.has_ema else "model")
    generator.to(device)
    discriminator = srgan_discriminator(in_chans, cfg.discriminator_config).to(device)
    return generator, discriminator, model_spec(generator, (), in_chans, cfg.hr_size // cfg.scale)


def train_srgan(
    cfg: SRGANConfig,
    faces: FaceSet,
    val_faces: Optional[FaceSet],
    out_dir: str | os.PathLike,
    progress: Optional[Progress] = None,
    info: Optional[dict] = None,
    resume: bool = False,
) -> SRGANResult:
    """Train an SRGAN on ``faces`` (labels unused); validate on ``val_faces`` (or a held-out share) every epoch.

    Writes ``best.safetensors`` (lowest validation content loss of the adversarial phase),
    ``last.safetensors``, ``pretrain.safetensors`` (with ``pretrain_epochs``), ``metrics.jsonl``,
    ``config.json`` and ``sr_report.json`` into ``out_dir``. ``last.safetensors`` is written after
    every epoch of both phases with the discriminator and the optimisers, and ``resume`` continues
    from it: epochs are counted across the phases, and their batches are seeded by that count.
    """

    cfg.validate()
    device = resolve_device(cfg.device)
    train_set, val_set = prepare_sr_data(cfg, faces, val_faces)
    features = load_feature_net(cfg.feature_net).to(device)
    generator, discriminator, spec = _setup(cfg, train_set.in_chans, device)
    images = train_set.images.to(device)
    bs = min(cfg.batch_size, len(images))
    steps = max(1, len(images) // bs)
    run, ckpt = Run.open(Path(out_dir), generator, cfg.to_dict(), resume=resume, progress=progress)
    state = ckpt.state if ckpt is not None else None
    # the content loss the run began with, on resume
    scale = state["feature_scale"] if state is not None else (cfg.feature_scale or features.default_scale or measure_feature_scale(features, images[:bs].float().div(255)))
    trainer = SRGANTrainer(generator, discriminator, features, cfg, scale)
    done, best = 0, {"best_content": math.inf, "best_psnr": -math.inf, "best_epoch": 0}
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        done, best = state["epoch"], {k: state[k] for k in best}
    report(progress, "srgan_feature_net", 0, message=f"content loss on {features.describe()}, feature scale {scale:.4g}")
    training = {"task": "super-resolution", "training": "srgan", "scale": cfg.scale, "hr_size": cfg.hr_size, "feature_net": features.describe(),
                "feature_kind": features.kind, "feature_scale": scale, "initialised_from": cfg.init_from or None}  # fmt: skip
    bicubic_content = trainer.val_content(val_set.images, cfg.eval_batch_size, bicubic=True)
    total_epochs = cfg.pretrain_epochs + cfg.epochs

    for n in range(done + 1, total_epochs + 1):  # epochs counted across the phases
        pretrain = n <= cfg.pretrain_epochs
        row = _pretrain_epoch(trainer, images, cfg, n, bs, steps, progress) if pretrain else _gan_epoch(trainer, images, cfg, n - cfg.pretrain_epochs, bs, steps, progress)
        row.update(_validate(trainer, val_set, cfg, device), bicubic_content=bicubic_content)
        meta = {**(info or {}), **training, "phase": row["phase"], "epoch": row["epoch"], "metrics": row, "config": cfg.to_dict()}
        if pretrain and n == cfg.pretrain_epochs:
            save_checkpoint(run.out / "pretrain.safetensors", generator, spec, info=meta)
        improved = not pretrain and row["val_content"] < best["best_content"]
        if improved:
            best = {"best_content": row["val_content"], "best_psnr": row["val_psnr"], "best_epoch": row["epoch"]}
        state = {"epoch": n, "trainer": trainer.state_dict(), "feature_scale": scale, **best}
        run.save_epoch(row, generator, spec, state=state, info=meta, best=generator if improved else None)
        # after the files: whoever hears of an epoch can rely on it being on disk
        report(progress, "srgan_epoch_end", n, total_epochs, **row)

    rep = _report(run, val_set, cfg, device, {
        **training,
        "selection": "lowest validation content loss among the adversarial epochs",
        "best_epoch": best["best_epoch"],
        "val_content": best["best_content"],
        "bicubic_content": bicubic_content,
        "epochs": cfg.epochs,
        "pretrain_epochs": cfg.pretrain_epochs,
        "n_train": len(images),
        "config": cfg.to_dict(),
        **(info or {}),
    })
    return SRGANResult(run.out, run.best_path, run.last_path, best["best_psnr"], best["best_epoch"], rep, run.history, best_content=best["best_content"],
                       pretrain_path=run.out / "pretrain.safetensors" if cfg.pretrain_epochs else None, feature_scale=scale)  # fmt: skip


def _report(run: Run, val_set: FaceSet, cfg: SRGANConfig, device: torch.device, facts: dict) -> dict:
    """``sr_report.json``: PSNR / SSIM of the best checkpoint (and of the SRResNet-MSE one), with the run's ``facts``."""
    rep = checkpoint_report(run.best_path, val_set, cfg, device, name=f"srgan {cfg.model}")
    if cfg.pretrain_epochs:
        rep["srresnet_mse"] = checkpoint_report(run.out / "pretrain.safetensors", val_set, cfg, device, name=f"srresnet-mse {cfg.model}")
    rep.update(facts)
    atomic_write_text(run.out / "sr_report.json", json.dumps(rep, indent=2))
    return rep


__all__ = [
    "SRGAN_CONFIGS",
    "ContentFeatures",
    "SRGANConfig",
    "SRGANResult",
    "SRGANTrainer",
    "load_feature_net",
    "measure_feature_scale",
    "train_srgan",
    "vgg19_relu54",
]
