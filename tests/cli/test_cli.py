"""The CLI: every bad input is one line on stderr, exit code 2, no traceback; the happy paths work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrfer.cli import main
from lrfer.models import create_model
from lrfer.models.checkpoint import model_spec, save_checkpoint
from tests.conftest import CKPLUS_NPZ, ROOT_DIR, make_faceset

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1, err
    assert lines[0].startswith("lrfer: error: ")
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    faces = make_faceset(24, classes=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    usage = ["Training"] * 12 + ["PublicTest"] * 6 + ["PrivateTest"] * 6
    rows = ["emotion,pixels,Usage"]
    for img, y, u in zip(faces.images[:, 0].numpy(), faces.labels.numpy(), usage):
        rows.append(f"{y},{' '.join(map(str, img.flatten()))},{u}")
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def tiny_checkpoint(path: Path, classes=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"), name="resnet18_fer_slim", **kw) -> Path:
    m = create_model(name, num_classes=len(classes), in_chans=1, **kw)
    return save_checkpoint(path, m, model_spec(m, tuple(classes), 1, 48))


def test_missing_data_path(capsys, tmp_path):
    code, _, err = run(capsys, "data", "info", str(tmp_path / "nope.csv"))
    assert_clean_error(code, err, "nope.csv")


def test_csv_with_wrong_columns(capsys, tmp_path):
    bad = tmp_path / "fer2013.csv"
    bad.write_text("label,image\n0,1 2 3\n")
    code, _, err = run(capsys, "data", "info", str(bad), "--format", "fer2013_csv")
    assert_clean_error(code, err, "fer2013.csv")


def test_pixel_string_of_wrong_length(capsys, tmp_path, fer_csv):
    lines = fer_csv.read_text().splitlines()
    lines[3] = "0,1 2 3,Training"
    fer_csv.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "data", "info", str(fer_csv))
    assert_clean_error(code, err, "fer2013.csv", "4")


def test_truncated_image_in_a_folder(capsys, tmp_path):
    for cls in ("happy", "sad"):
        (tmp_path / "faces" / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(tmp_path / "faces" / cls / "a.png")
    good = (tmp_path / "faces" / "sad" / "a.png").read_bytes()
    (tmp_path / "faces" / "sad" / "b.png").write_bytes(good[: len(good) // 2])
    code, _, err = run(capsys, "data", "info", str(tmp_path / "faces"))
    assert_clean_error(code, err, "b.png")


def test_empty_dataset_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "data", "info", str(tmp_path / "empty"))
    assert_clean_error(code, err)


def test_unknown_model_suggests_closest(capsys, fer_csv):
    code, _, err = run(capsys, "train", "--model", "resnet18_fer_slm", "--data", str(fer_csv), "--epochs", "1")
    assert_clean_error(code, err, "resnet18_fer_slim")


def test_unknown_split_name(capsys, fer_csv, tmp_path):
    ck = tiny_checkpoint(tmp_path / "c.safetensors", width=4, blocks=(1,))
    code, _, err = run(capsys, "evaluate", "--checkpoint", str(ck), "--data", str(fer_csv), "--split", "PublicTst", "--no-latency")
    assert_clean_error(code, err, "PublicTest")


def test_checkpoint_of_another_architecture(capsys, fer_csv, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    tiny_checkpoint(out / "last.safetensors", name="cnn2x2")
    code, _, err = run(capsys, "train", "--model", "resnet18_fer_slim", "--data", str(fer_csv), "--out", str(out), "--resume", "--epochs", "1", "--device", "cpu")
    assert_clean_error(code, err, "cnn2x2", "does not fit")


def test_checkpoint_that_is_not_one(capsys, fer_csv, tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    code, _, err = run(capsys, "evaluate", "--checkpoint", str(junk), "--data", str(fer_csv))
    assert_clean_error(code, err, "junk.safetensors")


def test_unknown_recipe(capsys, fer_csv):
    code, _, err = run(capsys, "train", "--recipe", "fer2013_multirez", "--data", str(fer_csv))
    assert_clean_error(code, err, "fer2013_multires")


def test_train_without_validation_reports_the_training_loss(capsys, fer_csv, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "resnet18_fer_slim"\nmodel_kwargs = { width = 4, blocks = [1] }\nepochs = 1\nbatch_size = 4\nval_split = "none"\n')
    code, out, _ = run(capsys, "train", "--recipe", str(recipe), "--data", str(fer_csv), "--out", str(tmp_path / "run"), "--no-progress")
    loss = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["train_loss"]
    assert code == 0 and "validation accuracy" not in out
    assert f"no validation split: best training loss {loss:.4f} at epoch 1" in out


def test_train_stops_at_its_time_budget_and_refuses_a_negative_one(capsys, fer_csv, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "resnet18_fer_slim"\nmodel_kwargs = { width = 4, blocks = [1] }\nbatch_size = 4\nval_split = "none"\n')
    argv = ["train", "--recipe", str(recipe), "--data", str(fer_csv), "--epochs", "100000", "--no-progress"]
    code, _, _ = run(capsys, *argv, "--time-budget", "0.005", "--out", str(tmp_path / "run"))
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert code == 0 and len(rows) < 100000 and rows[-1]["out_of_time"]
    assert sum(r["epoch_seconds"] for r in rows) >= 0.3
    code, _, err = run(capsys, *argv, "--time-budget", "-1", "--out", str(tmp_path / "bad"))
    assert_clean_error(code, err, "--time-budget", "-1")
    assert not (tmp_path / "bad").exists()


def test_a_finished_run_is_not_overwritten_without_being_asked(capsys, fer_csv, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "resnet18_fer_slim"\nmodel_kwargs = { width = 4, blocks = [1] }\nepochs = 1\nbatch_size = 4\nval_split = "none"\n')
    argv = ["train", "--recipe", str(recipe), "--data", str(fer_csv), "--out", str(tmp_path / "run"), "--no-progress"]
    assert run(capsys, *argv)[0] == 0
    before = (tmp_path / "run" / "last.safetensors").read_bytes()
    code, _, err = run(capsys, *argv)
    assert_clean_error(code, err, "already holds a training run (epoch 1 done)", "--resume", "--overwrite")
    assert (tmp_path / "run" / "last.safetensors").read_bytes() == before
    assert run(capsys, *argv, "--overwrite", "--seed", "1")[0] == 0
    assert (tmp_path / "run" / "last.safetensors").read_bytes() != before


def test_train_evaluate_sweep_on_a_kaggle_csv(capsys, fer_csv, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "resnet18_fer_slim"\nmodel_kwargs = { width = 4, blocks = [1] }\nepochs = 1\nbatch_size = 4\n[augment]\ndegrade_p = 0.5\n')
    code, out, _ = run(capsys, "train", "--recipe", str(recipe), "--data", str(fer_csv), "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0 and "best validation accuracy" in out
    ck = str(tmp_path / "run" / "best.safetensors")
    code, out, _ = run(capsys, "evaluate", "--checkpoint", ck, "--data", str(fer_csv), "--split", "PrivateTest", "--out", str(tmp_path / "ev"), "--no-latency", "--no-progress")
    assert code == 0
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert {"accuracy", "macro_f1", "per_class", "confusion"} <= rep.keys() and rep["n"] == 6
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 0
    code, out, _ = run(capsys, "sweep", "--checkpoint", ck, "--data", str(fer_csv), "--sizes", "8,16,48", "--out", str(tmp_path / "sw"), "--no-progress")
    assert code == 0
    sweep = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [r["size"] for r in sweep] == [8, 16, 48] and all({"size", "accuracy", "macro_f1"} <= r.keys() for r in sweep)
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 0


def test_sweep_of_an_ensemble(capsys, fer_csv, tmp_path):
    a = tiny_checkpoint(tmp_path / "a.safetensors", width=4, blocks=(1,))
    b = tiny_checkpoint(tmp_path / "b.safetensors", name="cnn2x2", depth=2, widths=(4, 8), fc=16, fc_layers=1)
    code, out, _ = run(capsys, "sweep", "--member", str(a), "--member", str(b), "--data", str(fer_csv), "--split", "PrivateTest",
                       "--sizes", "8,48", "--out", str(tmp_path / "sw"), "--no-progress")  # fmt: skip
    assert code == 0 and "ensemble (mean)" in out
    sweep = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert list(sweep) == ["a", "b", "ensemble (mean)"]
    assert all([r["size"] for r in rows] == [8, 48] and all(r["n"] == 6 for r in rows) for rows in sweep.values())
    # the same member alone gives the same rows as a one-model sweep
    code, _, _ = run(capsys, "sweep", "--checkpoint", str(a), "--data", str(fer_csv), "--split", "PrivateTest", "--sizes", "8,48",
                     "--out", str(tmp_path / "one"), "--no-progress")  # fmt: skip
    assert code == 0 and json.loads((tmp_path / "one" / "sweep.json").read_text()) == sweep["a"]
    code, _, err = run(capsys, "sweep", "--member", str(a), "--data", str(fer_csv), "--no-progress")
    assert_clean_error(code, err, "two or more --member")
    code, _, err = run(capsys, "sweep", "--checkpoint", str(a), "--member", str(a), "--member", str(b), "--data", str(fer_csv), "--no-progress")
    assert_clean_error(code, err, "--checkpoint and --member")


def test_sweep_sizes_checked_before_the_data_is_read(capsys, tmp_path):
    # the data path does not exist: the sizes must be the error reported
    code, _, err = run(capsys, "sweep", "--data", str(tmp_path / "absent.npz"), "--sizes", "0,16")
    assert_clean_error(code, err, "--sizes", "positive")


def test_models_and_recipes_list(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "cnn2x2" in out and "resnet18_fer_slim" in out
    code, out, _ = run(capsys, "recipes")
    assert code == 0 and "fer2013_multires" in out


def test_real_exit_code_and_no_traceback_from_the_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lrfer", "data", "info", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_sr_model_is_not_trained_as_a_classifier(capsys, fer_csv):
    code, _, err = run(capsys, "train", "--model", "edsr", "--data", str(fer_csv), "--epochs", "1")
    assert_clean_error(code, err, "super-resolution", "train-sr")


def test_missing_init_weights_file(capsys, fer_csv, tmp_path):
    code, _, err = run(capsys, "train", "--model", "cnn2x2", "--data", str(fer_csv), "--init-weights", str(tmp_path / "vggface2.pth"))
    assert_clean_error(code, err, "vggface2.pth")


def test_missing_extra_train_set(capsys, fer_csv, tmp_path):
    code, _, err = run(capsys, "train", "--model", "cnn2x2", "--data", str(fer_csv), "--extra-train", str(tmp_path / "ck.npz"), "--extra-train-repeat", "2")
    assert_clean_error(code, err, "extra_train", "ck.npz")


def test_extra_train_without_subjects_cannot_hold_any_out(capsys, fer_csv, tmp_path):
    code, _, err = run(capsys, "train", "--model", "cnn2x2", "--data", str(fer_csv), "--extra-train", str(fer_csv), "--epochs", "1", "--out", str(tmp_path / "r"))
    assert_clean_error(code, err, "no subject ids", "extra_train_holdout = 0")


def test_export_calibrate_and_predict_with_the_export(capsys, fer_csv, tmp_path):
    ck = tiny_checkpoint(tmp_path / "c.safetensors", width=4, blocks=(1,))
    code, out, _ = run(capsys, "calibrate", "--checkpoint", str(ck), "--data", str(fer_csv), "--out", str(tmp_path / "cal.safetensors"), "--no-progress")
    assert code == 0 and "temperature" in out and "PublicTest" in out
    from lrfer.models.checkpoint import load_checkpoint

    spec = load_checkpoint(tmp_path / "cal.safetensors").spec
    assert spec["calibration"]["split"] == "PublicTest" and spec["temperature"] == pytest.approx(spec["calibration"]["temperature"])
    code, out, _ = run(capsys, "export", "--checkpoint", str(tmp_path / "cal.safetensors"), "--onnx", str(tmp_path / "m.onnx"), "--int8", str(tmp_path / "m8.onnx"), "--data", str(fer_csv), "--no-progress")
    assert code == 0 and (tmp_path / "m.onnx").stat().st_size > 0 and (tmp_path / "m8.onnx").stat().st_size > 0
    faces = ROOT_DIR / "examples" / "faces"
    code, out, _ = run(capsys, "predict", "--no-detect", "--checkpoint", str(tmp_path / "m.onnx"), "--json", str(tmp_path / "p.json"), str(faces))
    assert code == 0 and len(json.loads((tmp_path / "p.json").read_text())) == 5
    code, _, err = run(capsys, "calibrate", "--data", str(fer_csv))
    assert_clean_error(code, err, "--out")


def test_calibrate_refuses_the_shipped_file_named_by_path(capsys, fer_csv):
    from lrfer.predict.classifier import DEFAULT_CHECKPOINT

    before = DEFAULT_CHECKPOINT.read_bytes()
    code, _, err = run(capsys, "calibrate", "--checkpoint", str(DEFAULT_CHECKPOINT), "--data", str(fer_csv), "--no-progress")
    assert_clean_error(code, err, "shipped model", "--out")
    assert DEFAULT_CHECKPOINT.read_bytes() == before


def test_evaluate_says_which_faces_the_model_cannot_score(capsys, tmp_path):
    # CK+'s layout: contempt, which a FER2013 model does not have, and no neutral
    faces = make_faceset(28, size=48, classes=("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"))
    np.savez(tmp_path / "d.npz", images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes))
    ck = tiny_checkpoint(tmp_path / "c.safetensors", width=4, blocks=(1,))
    n_contempt = int((faces.labels == 1).sum())
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(ck), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "ev"), "--no-progress", "--no-latency")
    assert code == 0 and f"n={28 - n_contempt}" in out
    assert f"note: {n_contempt} faces of contempt left out" in err


def test_train_with_a_front_end_and_folds(capsys, tmp_path):
    faces = make_faceset(96, size=48)
    faces.groups = np.array([f"S{(i // 3) % 6}" for i in range(96)])
    np.savez(tmp_path / "d.npz", images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes), groups=faces.groups)
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "resnet18_fer_slim"\nmodel_kwargs = { width = 4, blocks = [1] }\nepochs = 1\nbatch_size = 8\ntrain_split = "all"\nval_split = "none"\n')
    code, out, _ = run(capsys, "train", "--recipe", str(recipe), "--data", str(tmp_path / "d.npz"), "--front", "stn", "--folds", "3", "--fold", "0", "--out", str(tmp_path / "cv"), "--no-progress")
    assert code == 0 and "1/3 folds" in out
    from lrfer.models.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "cv" / "fold_00" / "last.safetensors").spec["name"] == "fronted"
    code, _, err = run(capsys, "train", "--recipe", str(recipe), "--data", str(tmp_path / "d.npz"), "--front", "sr")
    assert_clean_error(code, err, "--front-sr")


def test_key_values_parse_json_and_refuse_a_key_the_command_sets_itself():
    from lrfer.cli import parse_key_values
    from lrfer.errors import LrferError

    assert parse_key_values(["image_size=40", 'augment={"degrade_max": 40}', "name=x"], "--set") == {
        "image_size": 40, "augment": {"degrade_max": 40}, "name": "x"}  # fmt: skip
    with pytest.raises(LrferError, match="sets 'epochs' itself") as err:
        parse_key_values(["epochs=32"], "--set", own_flags={"epochs": "use --epochs"})
    assert err.value.hint == "use --epochs"
    with pytest.raises(LrferError, match="not key=value"):
        parse_key_values(["epochs"], "--set")


def test_webcam_prints_a_line_per_frame_and_stops_at_max_frames(capsys, monkeypatch):
    import lrfer.infer.video as video

    # the example video stands in for the camera
    monkeypatch.setattr(video, "open_webcam", lambda device: video.open_video(ROOT_DIR / "examples" / "far_scene.mp4"))
    code, out, _ = run(capsys, "webcam", "--max-frames", "3", "--no-progress", "--device", "cpu")
    lines = out.strip().splitlines()
    assert code == 0 and [l.split("  ")[0] for l in lines[:-1]] == ["frame 0", "frame 1", "frame 2"]
    assert lines[-1].startswith("3 frames, ") and "track_id" not in out  # the webcam prints no track table


def test_evaluate_scores_only_the_subjects_a_model_never_saw(capsys, tmp_path):
    """The shipped model trained with half of CK+48's subjects mixed in: `lrfer evaluate` on CK+48
    says so and scores the other half, while a model that never saw it is scored on all of it."""
    if not CKPLUS_NPZ.is_file():
        pytest.skip(f"{CKPLUS_NPZ} not available")
    code, out, err = run(capsys, "evaluate", "--data", str(CKPLUS_NPZ), "--no-latency", "--no-progress", "--out", str(tmp_path / "shipped"))
    assert code == 0 and "subjects it never saw" in err and "n=468" in out  # 492 held-out faces, 24 of them contempt
    ck = tiny_checkpoint(tmp_path / "fresh.safetensors")
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(ck), "--data", str(CKPLUS_NPZ), "--no-latency", "--no-progress", "--out", str(tmp_path / "fresh"))
    assert code == 0 and "never saw" not in err and "n=927" in out  # all 981 faces but the 54 of contempt
