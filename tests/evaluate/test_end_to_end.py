"""End-to-end scoring (lrfer.evaluate.end_to_end): a face the detector missed counts as wrong."""

import pytest

from lrfer.evaluate.end_to_end import end_to_end_report
from lrfer.evaluate.metrics import classification_report

CLASSES = ["angry", "happy", "sad"]
# 6 faces: 2 angry, 2 happy, 2 sad; one happy and one sad face were not found.
TRUE = ["angry", "angry", "happy", "happy", "sad", "sad"]
PRED = ["angry", "sad", "happy", None, "sad", None]
# found 4 of 6; right: angry, happy, sad = 3 -> accuracy 3/6 over all, 3/4 over the found
# angry: precision 1/1, recall 1/2, F1 2/3
# happy: precision 1/1, recall 1/2 (the missed face counts against it), F1 2/3
# sad:   precision 1/2 (the angry face read as sad), recall 1/2, F1 1/2
# macro F1 = (2/3 + 2/3 + 1/2) / 3 = 11/18


def test_a_missed_face_counts_as_wrong():
    got = end_to_end_report(TRUE, PRED, CLASSES)
    assert got["n"] == 6
    assert got["found"] == pytest.approx(4 / 6)
    assert got["accuracy"] == pytest.approx(3 / 6)
    assert got["accuracy_found"] == pytest.approx(3 / 4)
    assert got["macro_f1"] == pytest.approx(11 / 18)
    happy = got["per_class"]["happy"]
    assert happy == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2, "found": 1}
    assert got["per_class"]["sad"]["precision"] == 0.5


def test_every_face_found_is_the_plain_report():
    """With nothing missed, the numbers are classification_report's."""
    pred = ["angry", "sad", "happy", "angry", "sad", "happy"]
    got = end_to_end_report(TRUE, pred, CLASSES)
    ref = classification_report([CLASSES.index(c) for c in TRUE], [CLASSES.index(c) for c in pred], CLASSES)
    assert got["found"] == 1.0
    assert got["accuracy"] == ref["accuracy"] == got["accuracy_found"]
    assert got["macro_f1"] == pytest.approx(ref["macro_f1"])


def test_nothing_found():
    got = end_to_end_report(["happy", "sad"], [None, None], CLASSES)
    assert got["found"] == 0.0 and got["accuracy"] == 0.0 and got["accuracy_found"] is None
    # the two classes with faces count, with F1 0; angry (no face, no answer) is left out
    assert got["macro_f1"] == 0.0
    assert got["per_class"]["angry"]["support"] == 0


def test_labels_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match="contempt"):
        end_to_end_report(["contempt"], ["angry"], CLASSES)
    with pytest.raises(ValueError, match="neutral"):
        end_to_end_report(["angry"], ["neutral"], CLASSES)
    with pytest.raises(ValueError, match="1 labels"):
        end_to_end_report(["angry"], [], CLASSES)
