"""The PyOD adapter ffoc.pyod.FFOC honours PyOD's BaseDetector contract."""

from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("pyod")

from pyod.models.base import BaseDetector  # noqa: E402
from sklearn.base import clone  # noqa: E402

from ffoc import FFOneClass  # noqa: E402
from ffoc.pyod import FFOC  # noqa: E402


@pytest.fixture(scope="module")
def blobs():
    generator = np.random.default_rng(7)
    X_train = generator.normal(size=(240, 4))
    X_test = np.vstack([generator.normal(size=(40, 4)), generator.normal(size=(10, 4)) + 6.0])
    y_test = np.r_[np.zeros(40, dtype=int), np.ones(10, dtype=int)]
    return X_train, X_test, y_test


@pytest.fixture(scope="module")
def fitted(blobs):
    X_train, _, _ = blobs
    return FFOC(FFOneClass(epochs=5, random_state=0), contamination=0.1).fit(X_train)


def test_ffoc_is_pyod_detector():
    assert isinstance(FFOC(), BaseDetector)


def test_ffoc_decision_function_higher_is_anomalous(fitted, blobs):
    _, X_test, y_test = blobs
    scores = fitted.decision_function(X_test)
    assert scores.shape == (len(X_test),)
    np.testing.assert_allclose(scores, -fitted.estimator_.score_samples(X_test))
    assert scores[y_test == 1].min() > np.median(scores[y_test == 0]), "shifted rows must score higher"


def test_ffoc_training_attributes_follow_contamination(fitted, blobs):
    X_train, _, _ = blobs
    assert fitted.decision_scores_.shape == (len(X_train),)
    np.testing.assert_allclose(fitted.decision_scores_, fitted.decision_function(X_train))
    assert fitted.threshold_ == pytest.approx(np.percentile(fitted.decision_scores_, 90))
    assert set(np.unique(fitted.labels_)) <= {0, 1}
    np.testing.assert_array_equal(fitted.labels_, (fitted.decision_scores_ > fitted.threshold_).astype(int))
    assert abs(fitted.labels_.mean() - 0.1) <= 0.01, "about 10% of training rows are labelled outliers"
    assert fitted.n_features_in_ == X_train.shape[1]


def test_ffoc_predict_returns_zero_one(fitted, blobs):
    _, X_test, y_test = blobs
    labels = fitted.predict(X_test)
    assert set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels, (fitted.decision_function(X_test) > fitted.threshold_).astype(int))
    assert labels[y_test == 1].all(), "every shifted row is an outlier"


@pytest.mark.parametrize("method", ["linear", "unify"])
def test_ffoc_predict_proba_in_unit_interval(fitted, blobs, method):
    _, X_test, y_test = blobs
    proba = fitted.predict_proba(X_test, method=method)
    assert proba.shape == (len(X_test), 2)
    assert proba.min() >= 0.0
    assert proba.max() <= 1.0
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[y_test == 1, 1].mean() > proba[y_test == 0, 1].mean()


def test_ffoc_predict_proba_accepts_lists(fitted, blobs):
    _, X_test, _ = blobs
    proba = fitted.predict_proba(X_test[:3].tolist())
    assert proba.shape == (3, 2)


def test_ffoc_predict_proba_rejects_unknown_method(fitted, blobs):
    _, X_test, _ = blobs
    with pytest.raises(ValueError, match="method='softmax' is not supported"):
        fitted.predict_proba(X_test, method="softmax")


def test_ffoc_clone_keeps_parameters():
    detector = FFOC(FFOneClass(trainer="bp", epochs=3), contamination=0.2)
    copy = clone(detector)
    assert copy.contamination == 0.2
    assert copy.get_params()["estimator__trainer"] == "bp"
    assert copy.estimator is not detector.estimator


def test_ffoc_fit_leaves_given_estimator_unfitted(blobs):
    X_train, _, _ = blobs
    estimator = FFOneClass(epochs=2, random_state=0)
    detector = FFOC(estimator).fit(X_train)
    assert not hasattr(estimator, "layers_")
    assert detector.estimator_ is not estimator


def test_ffoc_default_estimator_uses_ffoneclass_defaults():
    detector = FFOC()
    assert detector.estimator is None
    X = np.random.default_rng(0).normal(size=(60, 3))
    detector.fit(X)
    assert detector.estimator_.get_params() == FFOneClass().get_params()


@pytest.mark.parametrize("contamination", [0.0, 0.6, -0.1])
def test_ffoc_rejects_contamination_out_of_range(blobs, contamination):
    X_train, _, _ = blobs
    with pytest.raises(ValueError, match="contamination=.* is out of range"):
        FFOC(FFOneClass(epochs=1), contamination=contamination).fit(X_train)


def test_ffoc_rejects_other_estimators(blobs):
    from sklearn.ensemble import IsolationForest

    X_train, _, _ = blobs
    with pytest.raises(TypeError, match="estimator must be an ffoc.FFOneClass"):
        FFOC(IsolationForest()).fit(X_train)


def test_ffoc_decision_function_requires_fit(blobs):
    from sklearn.exceptions import NotFittedError

    _, X_test, _ = blobs
    with pytest.raises(NotFittedError, match="not fitted"):
        FFOC().decision_function(X_test)


def test_ffoc_random_state_sets_wrapped_seed(blobs):
    X, _, _ = blobs
    first = FFOC(FFOneClass(epochs=2, random_state=5), random_state=0).fit(X)
    second = FFOC(FFOneClass(epochs=2), random_state=0).fit(X)
    assert first.estimator_.random_state == 0
    np.testing.assert_array_equal(first.decision_scores_, second.decision_scores_)


def test_ffoc_unify_without_spread_is_not_nan():
    X = np.ones((30, 4))
    with pytest.warns(UserWarning):
        detector = FFOC(FFOneClass(epochs=2, random_state=0)).fit(X)
    assert detector._sigma == 0
    rows = np.vstack([X[:2], np.full((1, 4), 9.0)])
    proba = detector.predict_proba(rows, method="unify")
    assert np.isfinite(proba).all()
    np.testing.assert_array_equal(proba.sum(axis=1), 1.0)
    # Training rows sit at the training score: inliers. A row away from them is an outlier.
    np.testing.assert_array_equal(proba[:, 1], [0.0, 0.0, 1.0])
    proba, confidence = detector.predict_proba(rows, method="unify", return_confidence=True)
    assert confidence.shape == (3,)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.float32(0.1), "pass a Python float"),
        (Fraction(1, 10), "pass a Python float"),
        (FFOneClass(), "PyThresh thresholder"),
        (FFOC(), "PyThresh thresholder"),
    ],
)
def test_ffoc_rejects_contamination_types(value, message, blobs):
    X_train, _, _ = blobs
    with pytest.raises(TypeError, match=message):
        FFOC(FFOneClass(epochs=1), contamination=value).fit(X_train)


def test_ffoc_ignores_y(blobs):
    X_train, X_test, _ = blobs
    estimator = FFOneClass(epochs=2, random_state=0)
    plain = FFOC(estimator).fit(X_train)
    for y in (np.zeros(len(X_train)), np.arange(len(X_train)) % 3, np.random.default_rng(0).normal(size=len(X_train))):
        with pytest.warns(UserWarning, match="y is ignored"):
            with_y = FFOC(estimator).fit(X_train, y)
        proba = with_y.predict_proba(X_test)
        assert proba.shape == (len(X_test), 2)
        np.testing.assert_array_equal(proba, plain.predict_proba(X_test))
