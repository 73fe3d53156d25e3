"""High-to-low-resolution distillation and mixup / cutmix in the training engine: the teacher sees
the clean view, mixing makes convex combinations, bad teachers are clear errors, resume stays
exact, and a good teacher's knowledge reaches the student."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import lrfer.train.engine as engine
from lrfer.data.augment import AugmentConfig, augment_batch, degrade, mix_batch
from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.train.engine import fit, prepare_faces
from lrfer.train.losses import cross_entropy, distillation_loss
from lrfer.train.optim import build_optimizer
from tests.conftest import make_faceset
from tests.train.test_engine import fit_cut_and_resumed, tiny_config, train_two_processes, write_npz

CLASSES = ("angry", "happy", "neutral")
# no geometry, every face degraded: the clean view of a sample is exactly its training image
PLAIN = {"flip": False, "rotate": 0.0, "scale": 0.0, "translate": 0.0, "crop": 0, "degrade_p": 1.0, "degrade_min": 6, "degrade_max": 12}


def random_teacher(path: Path, classes=CLASSES, in_chans: int = 1, width: int = 16, image_size: int = 24, crop: int = 20) -> Path:
    """A randomly initialised tiny classifier saved as a checkpoint: enough to wire a teacher up."""
    torch.manual_seed(1)
    model = create_model("resnet18_fer_slim", num_classes=len(classes), in_chans=in_chans, width=width, blocks=[1, 1])
    save_checkpoint(path, model, model_spec(model, tuple(classes), in_chans, image_size, crop))
    return path


def spy_inputs(monkeypatch) -> dict[str, list[torch.Tensor]]:
    """Record what the student and the teacher are fed, batch by batch."""
    seen: dict[str, list[torch.Tensor]] = {"student": [], "teacher": [], "mix": []}
    student_forward = engine._EmbedAndClassify.forward

    def student(self, x):
        seen["student"].append(x.detach().clone())
        return student_forward(self, x)

    real_load = engine.load_teacher

    def load(*args, **kwargs):
        t = real_load(*args, **kwargs)
        inner = t.model.embed_and_classify

        def teacher_forward(x):
            seen["teacher"].append(x.detach().clone())
            return inner(x)

        t.model.embed_and_classify = teacher_forward
        return t

    real_mix = engine.mix_batch

    def mix(views, y, **kw):
        out = real_mix(views, y, **kw)
        seen["mix"].append(([v.clone() for v in views], y.clone(), out))
        return out

    monkeypatch.setattr(engine._EmbedAndClassify, "forward", student)
    monkeypatch.setattr(engine, "load_teacher", load)
    monkeypatch.setattr(engine, "mix_batch", mix)
    return seen


# ---------------------------------------------------------------------------- (a) the KD loss
def test_kd_loss_is_zero_only_for_matching_logits():
    torch.manual_seed(0)
    z = torch.randn(6, 3, requires_grad=True)
    for t in (1.0, 4.0):
        same = distillation_loss(z, z.detach(), t)
        assert same.abs() < 1e-6
        same.backward()
        assert z.grad.abs().max() < 1e-6  # nothing to learn from a teacher that agrees
        z.grad = None
        assert distillation_loss(z, z.detach() + torch.randn(6, 3), t) > 1e-3
    # a constant shift of the logits is the same distribution: still zero
    assert distillation_loss(z, z.detach() + 5.0).abs() < 1e-5


def test_soft_cross_entropy_equals_hard_with_class_weights():
    """Mixup turns targets into distributions; one-hot ones must give the hard loss exactly, so that
    switching mixup on does not rescale the loss when class weights and smoothing are on."""
    torch.manual_seed(0)
    logits = torch.randn(7, 4)
    y = torch.tensor([0, 3, 1, 1, 2, 3, 3])
    onehot = torch.nn.functional.one_hot(y, 4).float()
    w = torch.tensor([0.9, 0.2, 0.5, 1.3])
    for ls in (0.0, 0.1):
        assert torch.allclose(cross_entropy(logits, y, w, ls), cross_entropy(logits, onehot, w, ls), atol=1e-6)


# ---------------------------------------------------------------------------- (b) the clean view
def test_augment_clean_view_is_the_same_draws_without_degradation():
    x = torch.rand(8, 1, 24, 24)
    cfg = AugmentConfig(rotate=10, scale=0.1, translate=0.1, crop=20, erase_p=1.0, degrade_p=1.0, degrade_min=6, degrade_max=6)
    torch.manual_seed(3)
    low, clean = augment_batch(x, cfg, with_clean=True)
    # degrading "to 24 px" (native) is a no-op that consumes the same random numbers
    torch.manual_seed(3)
    native, clean_native = augment_batch(x, replace(cfg, degrade_min=24, degrade_max=24), with_clean=True)
    assert torch.equal(clean, clean_native) and torch.equal(native, clean_native)
    assert low.shape == clean.shape == (8, 1, 20, 20)
    assert (low - clean).abs().flatten(1).amax(1).min() > 0.01  # every student sample differs from its clean view
    # the erased rectangle holds the same noise in both views: there they are identical
    assert ((low == clean).flatten(1).float().mean(1) > 0.02).all()
    # and without the clean view the student's batch is the same: distillation changes no draws
    torch.manual_seed(3)
    assert torch.equal(augment_batch(x, cfg), low)


def test_teacher_sees_the_batch_before_degradation(tmp_path, monkeypatch):
    seen = spy_inputs(monkeypatch)
    teacher = random_teacher(tmp_path / "teacher.safetensors", crop=0)
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(teacher), ema_decay=0.0, augment=PLAIN)
    faces = make_faceset(96)
    train = faces.select_split("Training")
    fit(cfg, train, None, tmp_path / "run")
    rows = prepare_faces(train, cfg).images.float() / 255
    assert len(seen["teacher"]) == len(seen["student"]) == 3
    for t, s in zip(seen["teacher"], seen["student"]):
        # every teacher sample is a training face exactly as stored: no degradation reached it
        dist = (t.flatten(1)[:, None] - rows.flatten(1)[None]).abs().amax(2)
        assert (dist.min(1).values == 0).all()
        # the student got each of those faces degraded to some size in [6, 12] px
        for i in range(len(t)):
            assert not torch.equal(s[i], t[i])
            assert any(torch.allclose(degrade(t[i : i + 1], r), s[i : i + 1], atol=1e-6) for r in range(6, 13)), i


def test_teacher_of_another_input_size_gets_a_resized_view(tmp_path, monkeypatch):
    seen = spy_inputs(monkeypatch)
    teacher = random_teacher(tmp_path / "teacher.safetensors", image_size=32, crop=0)
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(teacher), ema_decay=0.0)  # the student trains on 20 px crops
    faces = make_faceset(48)
    fit(cfg, faces.select_split("Training"), None, tmp_path / "run")
    assert seen["student"][0].shape[-2:] == (20, 20)
    assert seen["teacher"][0].shape[-2:] == (32, 32)


# ---------------------------------------------------------------------------- (c) bad teachers
def test_teacher_with_other_classes_or_channels_is_a_clear_error(tmp_path):
    faces = make_faceset(48)
    train = faces.select_split("Training")
    other = random_teacher(tmp_path / "other.safetensors", classes=("angry", "happy", "sad"))
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(other))
    with pytest.raises(LrferError, match="sad"):
        fit(cfg, train, None, tmp_path / "run")
    reordered = random_teacher(tmp_path / "reordered.safetensors", classes=("happy", "angry", "neutral"))
    with pytest.raises(LrferError, match="same order"):
        fit(replace(cfg, teacher=str(reordered)), train, None, tmp_path / "run")
    rgb = random_teacher(tmp_path / "rgb.safetensors", in_chans=3)
    with pytest.raises(LrferError, match="3-channel"):
        fit(replace(cfg, teacher=str(rgb)), train, None, tmp_path / "run")
    assert not (tmp_path / "run" / "last.safetensors").exists()  # refused before training


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"teacher": "nowhere.safetensors"}, "no such file"),
        ({"distill_feature_weight": 1.0}, "no teacher"),
        ({"mixup_alpha": -0.2}, "mixup_alpha"),
        ({"cutmix_alpha": float("nan")}, "cutmix_alpha"),
        ({"mix_p": 1.5}, "mix_p"),
        ({"teacher": "T", "distill_temperature": 0.0}, "distill_temperature"),
        ({"teacher": "T", "distill_weight": 0.0}, "both 0"),
        ({"distill_offline": True}, "no teacher"),
        ({"teacher": "T", "distill_offline": True, "distill_feature_weight": 1.0}, "features"),
    ],
)
def test_config_checks(tmp_path, overrides, match):
    teacher = random_teacher(tmp_path / "t.safetensors")
    overrides = {k: (str(teacher) if v == "T" else v) for k, v in overrides.items()}
    cfg, _ = tiny_config(tmp_path, **overrides)
    with pytest.raises(LrferError, match=match):
        cfg.validate()


def test_checkpoint_that_is_not_a_classifier_is_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(junk))
    with pytest.raises(LrferError, match="junk.safetensors"):
        fit(cfg, make_faceset(48).select_split("Training"), None, tmp_path / "run")


# ---------------------------------------------------------------------------- (d) mixup / cutmix
def test_mixup_makes_convex_combinations():
    torch.manual_seed(0)
    a, b = torch.rand(16, 1, 12, 12), torch.rand(16, 1, 12, 12)
    y = torch.nn.functional.one_hot(torch.arange(16) % 3, 3).float()
    (ma, mb), my, mix = mix_batch([a, b], y, mixup_alpha=0.4)
    assert mix.kind == "mixup" and 0 < mix.lam < 1
    assert sorted(mix.perm.tolist()) == list(range(16)) and not torch.equal(mix.perm, torch.arange(16))
    for v, m in ((a, ma), (b, mb)):  # both views mixed with the same partners and lambda
        assert torch.allclose(m, mix.lam * v + (1 - mix.lam) * v[mix.perm], atol=1e-6)
    assert torch.allclose(my, mix.lam * y + (1 - mix.lam) * y[mix.perm])
    assert torch.allclose(my.sum(1), torch.ones(16))
    assert ((my > 0) & (my < 1)).any()  # some pairs of different classes really were blended


def test_cutmix_pastes_one_box_and_weights_targets_by_its_area():
    torch.manual_seed(1)
    a = torch.rand(8, 1, 20, 20)
    y = torch.nn.functional.one_hot(torch.arange(8) % 4, 4).float()
    for _ in range(20):
        (m,), my, mix = mix_batch([a], y, cutmix_alpha=1.0)
        top, bottom, left, right = mix.box
        inside = torch.zeros(20, 20, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert torch.equal(m[..., inside], a[mix.perm][..., inside])
        assert torch.equal(m[..., ~inside], a[..., ~inside])
        assert mix.lam == pytest.approx(1 - inside.float().mean().item())
        assert torch.allclose(my, mix.lam * y + (1 - mix.lam) * y[mix.perm])
        assert torch.allclose(my.sum(1), torch.ones(8))


def test_mix_p_and_the_choice_between_mixup_and_cutmix():
    torch.manual_seed(2)
    x, y = torch.rand(4, 1, 8, 8), torch.eye(4)
    kinds = [mix_batch([x], y, mixup_alpha=0.2, cutmix_alpha=1.0, p=0.5)[2] for _ in range(400)]
    unmixed = sum(k is None for k in kinds)
    assert 150 < unmixed < 250
    names = [k.kind for k in kinds if k is not None]
    assert 0.35 < names.count("cutmix") / len(names) < 0.65
    views, same_y, none = mix_batch([x], y, mixup_alpha=0.2, p=0.0)
    assert none is None and views[0] is x and same_y is y


def test_engine_mixes_the_teachers_clean_view_with_the_students(tmp_path, monkeypatch):
    seen = spy_inputs(monkeypatch)
    teacher = random_teacher(tmp_path / "teacher.safetensors", crop=0)
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(teacher), ema_decay=0.0, mixup_alpha=1.0, cutmix_alpha=1.0, label_smoothing=0.1, augment=PLAIN)
    fit(cfg, make_faceset(96).select_split("Training"), None, tmp_path / "run")
    assert len(seen["mix"]) == 3
    for (views, y, (out, mixed_y, mix)), s, t in zip(seen["mix"], seen["student"], seen["teacher"]):
        assert mix is not None  # mix_p = 1
        assert y.dtype == torch.float32 and torch.equal(y.sum(1), torch.ones(len(y)))  # one-hot before mixing
        assert torch.equal(s, out[0]) and torch.equal(t, out[1])
        assert torch.allclose(mixed_y.sum(1), torch.ones(len(y)))
        if mix.kind == "mixup":
            assert torch.allclose(t, mix.lam * views[1] + (1 - mix.lam) * views[1][mix.perm], atol=1e-6)


# ---------------------------------------------------------------------------- (e) exact resume
def test_resume_is_exact_with_mixing_and_distillation(tmp_path):
    faces = make_faceset(96)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    teacher = random_teacher(tmp_path / "teacher.safetensors", width=16)  # wider than the student: a projection is learned
    cfg, _ = tiny_config(tmp_path, epochs=2, teacher=str(teacher), distill_feature_weight=0.5, mixup_alpha=0.4, cutmix_alpha=1.0, mix_p=0.8, center_loss=0.01)
    full = fit(cfg, train, val, tmp_path / "full")
    resumed = fit_cut_and_resumed(cfg, train, val, tmp_path / "cut")
    a, b = load_checkpoint(full.last_path), load_checkpoint(resumed.last_path)
    for which in ("model", "ema"):
        wa, wb = a.weights(which), b.weights(which)
        assert wa.keys() == wb.keys()
        for k in wa:
            assert torch.equal(wa[k], wb[k]), (which, k)
    pa, pb = a.state["distill_project"], b.state["distill_project"]
    assert pa["weight"].shape == (32, 16)  # student 8 -> 16 features, teacher 16 -> 32
    assert torch.equal(pa["weight"], pb["weight"]) and torch.equal(pa["bias"], pb["bias"])
    student = create_model("resnet18_fer_slim", num_classes=3, in_chans=1, width=8, blocks=[1, 1])
    assert len(a.state["optimizer"]["param_groups"]) == len(build_optimizer(student, cfg).param_groups) + 2  # + the projection's
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    assert all(r["train_distill_loss"] > 0 for r in full.history)


def test_resume_refuses_a_run_without_the_projection(tmp_path):
    faces = make_faceset(48)
    teacher = random_teacher(tmp_path / "teacher.safetensors", width=16)
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(teacher))
    fit(cfg, faces.select_split("Training"), None, tmp_path / "run")
    more = replace(cfg, epochs=2, distill_feature_weight=1.0)
    with pytest.raises(LrferError, match="without feature distillation"):
        fit(more, faces.select_split("Training"), None, tmp_path / "run", resume=True)


def test_two_process_ddp_keeps_student_and_projection_in_sync(tmp_path):
    """The projection lives inside the DDP-wrapped module, so its gradients are all-reduced too."""
    data = write_npz(tmp_path / "faces.npz", n=128)
    teacher = random_teacher(tmp_path / "teacher.safetensors", width=16)
    _, recipe = tiny_config(tmp_path, epochs=1)
    extra = f'teacher = "{teacher}"\ndistill_feature_weight = 1.0\nmixup_alpha = 0.4\ncutmix_alpha = 1.0\n'
    recipe.write_text(recipe.read_text().replace("[augment]", extra + "[augment]"))
    out = tmp_path / "ddp"
    check = train_two_processes(recipe, data, out)
    assert check["fingerprints"][0] == check["fingerprints"][1]
    last = load_checkpoint(out / "last.safetensors")
    assert last.info["config"]["teacher"] == str(teacher) and last.state["distill_project"]["weight"].shape == (32, 16)


# ---------------------------------------------------------------------------- (f) learning from a teacher
def test_student_learns_from_a_good_teacher_despite_useless_labels(tmp_path):
    """The labels the student trains on are shuffled, so only the teacher knows the classes: the
    student's validation loss drops well below chance only if distillation carries that knowledge.
    (Validation loss, not accuracy: on 3 synthetic classes accuracy jumps between 1/3 and 2/3 by
    luck, the loss does not; the margins hold for shuffle seeds 0-3.)"""
    faces = make_faceset(384)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    hr, _ = tiny_config(tmp_path, epochs=4, ema_decay=0.0, batch_size=32, lr=5e-2, augment={"degrade_p": 0.0})
    good = fit(hr, train, val, tmp_path / "teacher")
    assert good.best_metric > 0.95 and good.history[-1]["val_loss"] < 0.5

    shuffled = replace(train, labels=train.labels[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))])
    assert (shuffled.labels == train.labels).float().mean() < 0.5
    low_res = {"degrade_p": 1.0, "degrade_min": 8, "degrade_max": 16}
    student_cfg, _ = tiny_config(tmp_path, epochs=5, batch_size=32, lr=2e-2, teacher=str(good.best_path), distill_weight=5.0, augment=low_res)
    student = fit(student_cfg, shuffled, val, tmp_path / "student")
    kd = [r["train_distill_loss"] for r in student.history]
    assert kd[-1] < 0.5 * kd[0]  # it moved towards the teacher
    assert student.history[-1]["train_loss"] < student.history[0]["train_loss"]

    control = fit(replace(student_cfg, teacher=""), shuffled, val, tmp_path / "control")
    assert control.history[-1]["val_loss"] > 1.0  # chance is ln 3 = 1.10: the shuffled labels teach nothing
    assert student.history[-1]["val_loss"] < control.history[-1]["val_loss"] - 0.15


# ---------------------------------------------------------------------------- offline distillation
def test_offline_targets_mix_the_labels_with_the_teachers_view_of_the_clean_faces(tmp_path, monkeypatch):
    """distill_offline: one teacher pass over the faces before the resize; the targets the
    engine trains on are (labels + distill_weight * teacher probabilities at T) / (1 + weight)."""
    from lrfer.data.transforms import predict_proba

    teacher_path = random_teacher(tmp_path / "teacher.safetensors", image_size=24, crop=20)
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(teacher_path), distill_offline=True, distill_weight=3.0, distill_temperature=2.0,
                         ema_decay=0.0, augment=PLAIN, image_size=16)  # fmt: skip
    train = make_faceset(64, size=24).select_split("Training")
    teacher = load_checkpoint(teacher_path)
    probs = predict_proba(teacher.build_model(), train.images, crop=20, input_size=24, temperature=2.0)
    expected = 0.25 * torch.nn.functional.one_hot(train.labels.long(), 3).float() + 0.75 * probs
    got = engine.offline_teacher_targets(cfg, train, torch.nn.functional.one_hot(train.labels.long(), 3).float(), torch.device("cpu"))
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got.sum(1), torch.ones(len(train)))

    # in fit: computed on the 24 px faces (not the 16 px training copies), no teacher per step
    seen = {}
    real = engine.offline_teacher_targets

    def spy(cfg, faces, base, device, progress=None):
        seen["size"] = faces.images.shape[-1]
        seen["targets"] = real(cfg, faces, base, device, progress)
        return seen["targets"]

    monkeypatch.setattr(engine, "offline_teacher_targets", spy)
    monkeypatch.setattr(engine, "load_teacher", lambda *a, **k: pytest.fail("offline distillation must not load a per-step teacher"))
    losses = []
    real_ce = engine.cross_entropy
    monkeypatch.setattr(engine, "cross_entropy", lambda logits, y, *a: (losses.append(y.clone()), real_ce(logits, y, *a))[1])
    fit(cfg, train, None, tmp_path / "run")
    assert seen["size"] == 24
    torch.testing.assert_close(seen["targets"], expected)
    assert losses and all(y.dtype.is_floating_point and y.shape[1] == 3 for y in losses)  # the soft targets reached the loss


def test_offline_targets_from_a_teacher_trained_without_a_crop(tmp_path):
    """A checkpoint stores crop 0 for "no crop" (airnet_fer's recipes): the teacher sees whole faces."""
    from lrfer.data.transforms import predict_proba

    teacher_path = random_teacher(tmp_path / "teacher.safetensors", image_size=24, crop=0)
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(teacher_path), distill_offline=True, distill_weight=1.0, ema_decay=0.0, augment=PLAIN)
    train = make_faceset(16, size=24).select_split("Training")
    base = torch.nn.functional.one_hot(train.labels.long(), 3).float()
    probs = predict_proba(load_checkpoint(teacher_path).build_model(), train.images, input_size=24, temperature=cfg.distill_temperature)
    got = engine.offline_teacher_targets(cfg, train, base, torch.device("cpu"))
    torch.testing.assert_close(got, 0.5 * base + 0.5 * probs)


def test_offline_teachers_pass_counts_against_the_time_budget(tmp_path, monkeypatch):
    """A 30-minute recipe means 30 minutes in all: the teacher's pass before the first epoch is
    on the budget's clock, so a slow pass leaves the student fewer steps, not a longer run."""
    from tests.train.test_engine import TickingClock

    clock = TickingClock()
    monkeypatch.setattr(engine, "time", clock)
    teacher_path = random_teacher(tmp_path / "teacher.safetensors", image_size=24, crop=20)
    train = make_faceset(64, size=24).select_split("Training")
    real = engine.offline_teacher_targets
    pass_s = 0.5  # the teacher's pass, as the ticking clock sees it

    def slow_teacher(*args, **kwargs):
        clock.now += pass_s
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "offline_teacher_targets", slow_teacher)
    budget_min = 1.0 / 60
    cfg, _ = tiny_config(tmp_path, epochs=10_000, time_budget_minutes=budget_min, teacher=str(teacher_path), distill_offline=True,
                         ema_decay=0.0, augment=PLAIN, image_size=16, batch_size=8)  # fmt: skip
    rows = fit(cfg, train, None, tmp_path / "run").history
    assert rows[0]["teacher_seconds"] >= pass_s and all("teacher_seconds" not in r for r in rows[1:])
    epochs_s = sum(r["epoch_seconds"] for r in rows)
    assert rows[-1].get("out_of_time")
    assert epochs_s < budget_min * 60 - pass_s + rows[-1]["epoch_seconds"]  # the epochs got what the pass left
    assert epochs_s + rows[0]["teacher_seconds"] >= budget_min * 60


def test_teacher_default_names_the_shipped_model(tmp_path):
    from lrfer.predict.classifier import DEFAULT_CHECKPOINT

    cfg, _ = tiny_config(tmp_path, teacher="default", distill_offline=True)
    assert cfg.validate().teacher_path == str(DEFAULT_CHECKPOINT)


# ---------------------------------------------------------------------------- the recipe
def test_distill_recipe_is_the_default_plus_a_teacher(tmp_path):
    from lrfer.train.config import TrainConfig, load_config

    cfg = load_config("fer2013_distill").validate()
    assert cfg.teacher == "" and cfg.distill_weight == 1.0 and cfg.distill_temperature == 4.0 and cfg.mixup_alpha > 0
    assert 0.5 <= cfg.augment.degrade_p <= 0.7
    defaults = TrainConfig()
    fields = ("teacher", "distill_weight", "distill_temperature", "distill_feature_weight", "mixup_alpha", "cutmix_alpha", "mix_p")
    as_default = replace(cfg, **{f: getattr(defaults, f) for f in fields}, augment=replace(cfg.augment, degrade_p=0.5), recipe="", paper={})
    assert as_default == replace(load_config("fer2013_multires"), recipe="", paper={})
    # the teacher comes as an override (what `lrfer train --teacher CKPT` passes), and trains
    teacher = random_teacher(tmp_path / "teacher.safetensors", image_size=48, crop=44)
    small = {"teacher": str(teacher), "model_kwargs": {"width": 8, "blocks": [1, 1]}, "epochs": 1, "batch_size": 8, "limit_train": 16, "device": "cpu", "val_split": "none"}
    run = load_config("fer2013_distill", **small).validate()
    res = fit(run, make_faceset(64).select_split("Training"), None, tmp_path / "run")
    assert res.history[0]["train_distill_loss"] > 0


def test_cli_teacher_flag_reaches_the_config(tmp_path, capsys):
    """``lrfer train --teacher CKPT`` distils; a missing teacher file is one clear error line."""
    from lrfer.cli import main

    code = main(["train", "--model", "resnet18_fer_slim", "--data", str(tmp_path / "none.npz"), "--teacher", str(tmp_path / "missing.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing.safetensors" in err[0]


def test_offline_targets_start_from_soft_labels_and_refuse_a_set_without_them(tmp_path, monkeypatch):
    """label_mode 'soft': the teacher mixes with the vote distributions, not with one-hot labels;
    a set without soft labels is the same clear error with a teacher as without one."""
    teacher_path = random_teacher(tmp_path / "teacher.safetensors", image_size=24, crop=20)
    train = make_faceset(32, size=24).select_split("Training")
    votes = torch.softmax(torch.randn(len(train), 3, generator=torch.Generator().manual_seed(0)), 1)
    cfg, _ = tiny_config(tmp_path, epochs=1, teacher=str(teacher_path), distill_offline=True, label_mode="soft", ema_decay=0.0, augment=PLAIN)
    seen = {}

    def spy(cfg, faces, base, device, progress=None):
        seen["base"] = base
        return base

    monkeypatch.setattr(engine, "offline_teacher_targets", spy)
    fit(cfg, replace(train, soft_labels=votes), None, tmp_path / "run")
    torch.testing.assert_close(seen["base"], votes)
    with pytest.raises(LrferError, match="needs soft labels"):
        fit(cfg, train, None, tmp_path / "run2")
