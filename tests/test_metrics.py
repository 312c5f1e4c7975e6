"""accuracy, confusion matrix, precision/recall/F1, the report table."""

import numpy as np
import pytest

from nnumpy.training.metrics import accuracy, classification_report, confusion_matrix, labels_of, precision_recall_f1


def test_accuracy_takes_labels_scores_or_one_hot():
    y = np.array([0, 1, 2, 1])
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.0, 1.0, 0.0]])
    assert accuracy(y, scores) == 0.75
    assert accuracy(np.eye(3)[y], scores.argmax(1)) == 0.75
    assert accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="4 samples but y_pred has 3"):
        accuracy(y, y[:3])
    with pytest.raises(TypeError, match="labels must be integers"):
        labels_of(np.array([0.5, 1.0]))


def test_confusion_matrix_rows_are_true_classes():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    cm = confusion_matrix(y_true, y_pred)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.dtype == np.int64
    assert confusion_matrix(y_true, y_pred, num_classes=4).shape == (4, 4)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1\]"):
        confusion_matrix(y_true, y_pred, num_classes=2)


def test_precision_recall_f1_by_hand_and_zero_division():
    cm = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    precision, recall, f1, support = precision_recall_f1(cm)
    np.testing.assert_allclose(precision, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(recall, [0.5, 1.0, 2 / 3])
    np.testing.assert_allclose(f1, [0.5, 2 / 3, 0.8])
    assert support.tolist() == [2, 1, 3]
    p, r, f, s = precision_recall_f1(np.array([[2, 0], [0, 0]]))  # class 1 never seen nor predicted
    assert p.tolist() == [1.0, 0.0] and r.tolist() == [1.0, 0.0] and f.tolist() == [1.0, 0.0]


def test_classification_report_table():
    text = classification_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], class_names=["cat", "dog", "bird"])
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert lines[2].split() == ["cat", "0.5000", "0.5000", "0.5000", "2"]
    assert lines[-2].split() == ["accuracy", "0.6667", "6"]
    assert lines[-1].split()[:2] == ["macro", "avg"]
