"""Face detection on real photos: the astronaut at native size and shrunk into 640x480 frames."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
from PIL import Image

from lrfer.errors import LrferError
from lrfer.infer.detect import DEFAULT_DETECTOR, Detections, FaceDetector, as_rgb, create_detector, list_detectors, nms
from lrfer.infer.detect import mtcnn as mtcnn_mod
from tests.conftest import ROOT_DIR

ASTRONAUT = ROOT_DIR / "examples" / "astronaut.png"
# The face in examples/astronaut.png (512x512), x1 y1 x2 y2: checked by eye; MTCNN and the Haar
# cascade, which share nothing with yuface, agree with it within a few pixels.
FACE = np.array([178, 63, 267, 175], np.float64)
FACE_W = FACE[2] - FACE[0]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


@pytest.fixture(scope="module")
def yuface():
    return create_detector("yuface")


def paste(frame: np.ndarray, photo: np.ndarray, face_w: float, offset) -> np.ndarray:
    """Paste the photo shrunk (antialiased) so its face is ``face_w`` px wide; the face box in ``frame``."""
    n = round(512 * face_w / FACE_W)
    small = np.asarray(Image.fromarray(photo).resize((n, n), Image.LANCZOS))
    ox, oy = offset
    h, w = min(n, frame.shape[0] - oy), min(n, frame.shape[1] - ox)
    frame[oy : oy + h, ox : ox + w] = small[:h, :w]
    return FACE * (n / 512) + np.array([ox, oy, ox, oy])


def scene(photo: np.ndarray, face_w: float, offset=(260, 180), seed: int = 0, size=(480, 640)):
    """A noisy gray frame holding one face ``face_w`` px wide; the frame and the face box."""
    rng = np.random.default_rng(seed)
    frame = np.clip(128 + rng.normal(0, 10, (*size, 3)), 0, 255).astype(np.uint8)
    return frame, paste(frame, photo, face_w, offset)


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def best_iou(det: Detections, box) -> float:
    return max((iou(b, box) for b in det.boxes), default=0.0)


def check_shapes(det: Detections, with_landmarks: bool = True):
    n = len(det)
    assert det.boxes.shape == (n, 4) and det.boxes.dtype == np.float32
    assert det.scores.shape == (n,) and det.scores.dtype == np.float32
    if with_landmarks:
        assert det.landmarks is not None and det.landmarks.shape == (n, 5, 2) and det.landmarks.dtype == np.float32
    else:
        assert det.landmarks is None


def check_landmark_order(det: Detections, k: int = 0):
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = det.landmarks[k]
    assert lex < rex, "image-left eye first"
    assert lmx <= rmx, "image-left mouth corner first"
    assert max(ley, rey) < ny < min(lmy, rmy), "eyes above the nose above the mouth"
    assert lex < nx < rex
    x1, y1, x2, y2 = det.boxes[k]
    assert np.all((det.landmarks[k, :, 0] > x1) & (det.landmarks[k, :, 0] < x2))
    assert np.all((det.landmarks[k, :, 1] > y1) & (det.landmarks[k, :, 1] < y2))


# -- the registry ----------------------------------------------------------------------------


def test_registry_and_unknown_names():
    assert DEFAULT_DETECTOR == "yunet"
    assert {"yunet", "yuface", "mtcnn", "haar", "mediapipe"} <= set(list_detectors())
    with pytest.raises(LrferError, match="did you mean 'yuface'"):
        create_detector("yufce")
    with pytest.raises(LrferError, match="unknown face detector 'nope'"):
        create_detector("nope")
    with pytest.raises(LrferError, match="min_score"):
        create_detector("yuface", min_score=1.5)
    with pytest.raises(LrferError, match="upscale"):
        create_detector("yuface", upscale=0)
    with pytest.raises(LrferError, match="no option 'bakend'.*'backend'"):
        create_detector("yunet", bakend="onnxruntime")


def test_empty_detections():
    e = Detections.empty()
    check_shapes(e)
    assert len(e) == 0
    check_shapes(Detections.empty(with_landmarks=False), with_landmarks=False)


# -- yuface on real faces --------------------------------------------------------------------


def test_yuface_native_photo_one_face(yuface, astronaut):
    det = yuface.detect(astronaut)
    check_shapes(det)
    assert len(det) == 1
    assert iou(det.boxes[0], FACE) > 0.7
    assert 0.5 <= det.scores[0] <= 1.0
    check_landmark_order(det)


def test_yuface_finds_24px_face_in_vga_frame(yuface, astronaut):
    for k, offset in enumerate([(260, 180), (37, 301), (551, 23)]):
        frame, box = scene(astronaut, 24, offset, seed=k)
        det = yuface.detect(frame)
        check_shapes(det)
        hits = [b for b in det.boxes if iou(b, box) > 0.5]
        assert len(hits) == 1, (offset, det.boxes, box)
        w = hits[0][2] - hits[0][0]
        assert 16 <= w <= 32  # a ~24 px face, in original-frame pixels
        assert np.all(det.scores >= yuface.min_score)


def test_yuface_upscale_finds_face_that_native_scale_misses(astronaut):
    # Measured first: at 8 px yuface misses the face at every position tried; at 2x it finds it.
    frame, box = scene(astronaut, 8, (260, 180))
    assert best_iou(create_detector("yuface", upscale=1).detect(frame), box) < 0.3
    det = create_detector("yuface", upscale=2).detect(frame)
    assert best_iou(det, box) > 0.5  # boxes come back in original-frame pixels
    assert np.all(det.boxes[:, 2:] <= [640, 480])


def test_yuface_landmark_order_mirrored_and_small(yuface, astronaut):
    mirrored = yuface.detect(astronaut[:, ::-1])  # a view with negative strides
    assert len(mirrored) == 1
    check_landmark_order(mirrored)
    assert iou(mirrored.boxes[0], [512 - FACE[2], FACE[1], 512 - FACE[0], FACE[3]]) > 0.7
    frame, box = scene(astronaut, 32)
    det = yuface.detect(frame)
    k = int(np.argmax([iou(b, box) for b in det.boxes]))
    check_landmark_order(det, k)


def test_yuface_several_faces_no_overlaps(yuface, astronaut):
    frame, box = scene(astronaut, 24, (20, 20), seed=1)
    boxes = [box, paste(frame, astronaut, 32, (250, 200)), paste(frame, astronaut, 48, (450, 100))]
    det = yuface.detect(frame)
    for b in boxes:
        assert best_iou(det, b) > 0.5
    assert np.all(np.diff(det.scores) <= 0), "best score first"
    for i in range(len(det)):
        for j in range(i + 1, len(det)):
            assert iou(det.boxes[i], det.boxes[j]) <= 0.5


def test_yuface_gray_input(yuface, astronaut):
    frame, box = scene(astronaut, 24)
    gray = np.asarray(Image.fromarray(frame).convert("L"))
    det = yuface.detect(gray)
    check_shapes(det)
    assert best_iou(det, box) > 0.5
    assert len(yuface.detect(gray[:, :, None])) == len(det)


def test_yuface_blank_frames_give_no_faces(yuface):
    for frame in (np.zeros((480, 640, 3), np.uint8), np.full((480, 640), 128, np.uint8), np.zeros((0, 0, 3), np.uint8), np.zeros((3, 5, 3), np.uint8)):
        det = yuface.detect(frame)
        assert len(det) == 0
        check_shapes(det)


def test_boxes_clipped_to_frame(yuface, astronaut):
    # The face cut by the left edge: yuface's own box starts left of the frame.
    cut = astronaut[40:, 200:]
    det = yuface.detect(cut)
    assert len(det) >= 1
    h, w = cut.shape[:2]
    assert np.all(det.boxes >= 0) and np.all(det.boxes[:, [0, 2]] <= w) and np.all(det.boxes[:, [1, 3]] <= h)
    assert det.boxes[0, 0] == 0
    assert iou(det.boxes[0], [0, FACE[1] - 40, FACE[2] - 200, FACE[3] - 40]) > 0.5


def test_detect_batch_equals_per_frame(yuface, astronaut):
    frames = [scene(astronaut, w, (100 + 5 * w, 150), seed=w)[0] for w in (16, 24, 40)] + [np.zeros((480, 640, 3), np.uint8), astronaut]
    batch = yuface.detect_batch(frames)
    assert len(batch) == len(frames)
    for frame, b in zip(frames, batch):
        one = yuface.detect(frame)
        assert np.array_equal(one.boxes, b.boxes) and np.array_equal(one.scores, b.scores)
        assert np.array_equal(one.landmarks, b.landmarks)
    assert sum(len(b) for b in batch) >= 4


def test_bad_frames_raise_lrfer_error(yuface):
    with pytest.raises(LrferError, match="uint8"):
        yuface.detect(np.zeros((48, 48, 3), np.float32))
    with pytest.raises(LrferError, match="HxWx3"):
        yuface.detect(np.zeros((48, 48, 2), np.uint8))


def test_a_torch_tensor_frame_is_refused_by_name():
    torch = pytest.importorskip("torch")
    with pytest.raises(LrferError, match="not a torch tensor"):
        as_rgb(torch.zeros(48, 48, 3, dtype=torch.uint8))


# -- the shared post-processing, on fixed raw outputs -----------------------------------------


class _Fixed(FaceDetector):
    """Returns the same raw detections in the (enlarged) frame's pixels, to test the base class."""

    def __init__(self, raw: Detections, **kw):
        super().__init__(**kw)
        self.raw = raw
        self.seen: list[tuple[int, int]] = []

    def _detect(self, rgb):
        self.seen.append(rgb.shape[:2])
        return self.raw


def test_post_processing_filters_clips_nms_and_maps_back():
    boxes = np.array([[10, 10, 50, 50], [12, 12, 52, 52], [-20, 100, 40, 150], [300, 300, 320, 320], [60, 60, 60, 90]], np.float32)
    scores = np.array([0.6, 0.9, 0.8, 0.3, 0.95], np.float32)
    lm = np.arange(5 * 5 * 2, dtype=np.float32).reshape(5, 5, 2)
    det = _Fixed(Detections(boxes, scores, lm), min_score=0.5).detect(np.zeros((200, 100, 3), np.uint8))
    # 1 beats 0 (IoU 0.82), 3 is below min_score, 4 has no width, 2 is clipped on the left,
    # and the box at (300, 300) is outside the 100x200 frame anyway.
    assert det.scores.tolist() == pytest.approx([0.9, 0.8])
    assert det.boxes.tolist() == [[12, 12, 52, 52], [0, 100, 40, 150]]
    assert np.array_equal(det.landmarks, lm[[1, 2]])

    up = _Fixed(Detections(boxes[:1] * 2, scores[:1], lm[:1] * 2), upscale=2)
    det = up.detect(np.zeros((201, 101), np.uint8))
    assert up.seen == [(402, 202)]
    assert det.boxes[0] == pytest.approx(boxes[0], abs=0.3)
    assert det.landmarks[0] == pytest.approx(lm[0], abs=0.3)


# -- missing optional packages: one-line LrferErrors, not ImportErrors --------------------------


@pytest.mark.parametrize(
    "name,module,hint",
    [
        ("yuface", "yuface", "pip install yuface"),
        ("mtcnn", "facenet_pytorch", "pip install --no-deps facenet-pytorch==2.6.0"),
        ("haar", "cv2", 'pip install "opencv-python-headless<5"'),
        ("mediapipe", "mediapipe", "mediapipe==0.10.21"),
    ],
)
def test_missing_package_message(monkeypatch, name, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    monkeypatch.setattr(mtcnn_mod, "_MTCNN_MODULE", None)
    with pytest.raises(LrferError) as err:
        create_detector(name)
    msg = str(err.value)
    assert f"detector '{name}' needs" in msg and hint in msg and "\n" not in msg


def test_mediapipe_without_legacy_api(monkeypatch):
    newer = types.ModuleType("mediapipe")
    newer.__version__ = "0.10.30"
    monkeypatch.setitem(sys.modules, "mediapipe", newer)
    with pytest.raises(LrferError, match="0.10.30 no longer has.*mediapipe==0.10.21"):
        create_detector("mediapipe")


# -- optional backends on real faces ---------------------------------------------------------


@pytest.fixture(scope="module")
def mtcnn():
    # Not importorskip: facenet_pytorch's own __init__ needs `requests`, which the detector avoids.
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip("facenet-pytorch not installed")
    return create_detector("mtcnn", device="cpu")


def test_mtcnn_native_and_24px(mtcnn, astronaut):
    det = mtcnn.detect(astronaut)
    check_shapes(det)
    assert len(det) == 1 and iou(det.boxes[0], FACE) > 0.7
    check_landmark_order(det)
    frame, box = scene(astronaut, 24)
    det = mtcnn.detect(frame)
    assert best_iou(det, box) > 0.5


def test_mtcnn_batch_equals_per_frame(mtcnn, astronaut):
    frames = [scene(astronaut, w, (40 * w % 200, 60), seed=w, size=(240, 320))[0] for w in (20, 32)]
    frames.append(np.zeros((100, 120), np.uint8))  # another size: its own batch
    batch = mtcnn.detect_batch(frames)
    for frame, b in zip(frames, batch):
        one = mtcnn.detect(frame)
        assert len(one) == len(b)
        np.testing.assert_allclose(b.boxes, one.boxes, atol=0.05)
        np.testing.assert_allclose(b.landmarks, one.landmarks, atol=0.05)
    assert len(batch[0]) >= 1 and len(batch[1]) >= 1 and len(batch[2]) == 0


@pytest.fixture(scope="module")
def cv2_with_cascades():
    cv2 = pytest.importorskip("cv2")
    try:
        create_detector("haar")
    except LrferError as err:
        pytest.skip(str(err))
    return cv2


def test_haar_finds_faces_without_landmarks(cv2_with_cascades, astronaut):
    haar = create_detector("haar")
    det = haar.detect(astronaut)
    check_shapes(det, with_landmarks=False)
    assert len(det) == 1 and iou(det.boxes[0], FACE) > 0.6
    assert 0.5 < det.scores[0] <= 1
    # Measured first: the cascade's 24 px window misses a 20 px face; at 2x it finds it.
    frame, box = scene(astronaut, 20)
    assert best_iou(haar.detect(frame), box) < 0.3
    assert best_iou(create_detector("haar", upscale=2).detect(frame), box) > 0.5
    check_shapes(haar.detect(np.zeros((50, 50), np.uint8)), with_landmarks=False)


def test_haar_without_cascade_files(cv2_with_cascades, monkeypatch, tmp_path):
    # OpenCV 5 wheels ship no cascade files: an empty cascade folder behaves the same.
    monkeypatch.setattr(cv2_with_cascades.data, "haarcascades", str(tmp_path) + "/")
    with pytest.raises(LrferError, match='opencv-python-headless<5'):
        create_detector("haar")


def test_mediapipe_native_photo(astronaut):
    mp = pytest.importorskip("mediapipe")
    if getattr(mp, "solutions", None) is None:
        pytest.skip("mediapipe without the legacy mp.solutions API")
    with create_detector("mediapipe") as det_mp:
        det = det_mp.detect(astronaut)
        check_shapes(det)
        assert len(det) == 1 and iou(det.boxes[0], FACE) > 0.6
        lm = det.landmarks[0]
        assert lm[0, 0] < lm[1, 0] and lm[3].tolist() == lm[4].tolist()  # mouth centre twice
        assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < lm[3, 1]
        assert len(det_mp.detect(np.zeros((480, 640, 3), np.uint8))) == 0


def test_nms_keeps_no_overlapping_pair_and_drops_only_overlapped_boxes():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (60, 2))], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 60).astype(np.float32)
    keep = nms(boxes, scores, 0.5)
    assert np.all(np.diff(scores[keep]) <= 0)
    for a in range(len(keep)):
        for b in range(a + 1, len(keep)):
            assert iou(boxes[keep[a]], boxes[keep[b]]) <= 0.5
    for d in set(range(60)) - set(keep.tolist()):
        assert any(iou(boxes[k], boxes[d]) > 0.5 and scores[k] >= scores[d] for k in keep)
    assert 5 < len(keep) < 60


def test_yunet_default_finds_a_24px_face_like_yuface(astronaut, yuface):
    """The default detector (the shipped YuNet graph on onnxruntime) agrees with the yuface wheel its weights came from."""
    det = create_detector()
    frames, boxes = zip(*(scene(astronaut, 24, offset=(100 + 90 * i, 120 + 40 * i), seed=i) for i in range(3)))
    batch = det.detect_batch(list(frames))
    for frame, box, got in zip(frames, boxes, batch):
        ref = yuface.detect(frame)
        assert len(got) == len(ref) >= 1 and best_iou(got, box) > 0.5
        assert np.abs(got.boxes - ref.boxes).max() < 2  # yuface truncates x, y, w and h to whole pixels
        assert np.abs(got.scores - ref.scores).max() <= 0.015
        single = det.detect(frame)
        np.testing.assert_allclose(single.boxes, got.boxes, atol=1e-3)


def test_auto_upscale_enlarges_small_frames_only(astronaut):
    det = create_detector(upscale="auto")
    small, _, _ = det._enlarge(np.zeros((480, 640, 3), np.uint8))
    big, sx, _ = det._enlarge(np.zeros((1080, 1920, 3), np.uint8))
    assert small.shape[:2] == (960, 1280) and big.shape[:2] == (1080, 1920) and sx == 1.0
    frame, box = scene(astronaut, 8)  # 8 px: missed at 1x (see the upscale test), found on the 2x copy
    assert best_iou(det.detect(frame), box) > 0.5
    with pytest.raises(LrferError, match="upscale"):
        create_detector(upscale="big")
