"""scikit-learn's common estimator checks, with each skipped check and its reason."""

import warnings

import numpy as np
from sklearn.utils.estimator_checks import check_estimator

from ffoc import FFOneClass

EXPECTED_FAILED_CHECKS = {
    # scikit-learn's check expects contamination in (0, 0.5]; ffoc also allows 0
    # (the threshold at the lowest training score), a documented choice.
    "check_outlier_contamination": "contamination=0 is allowed on purpose: threshold at the lowest training score",
    # The network runs in float32, and matrix kernels pick their blocking by batch size.
    # A row scored alone and among others then differs in the last float32 digits: 3e-7
    # measured on an Intel Xeon, above the check's 1e-7 (an AMD EPYC gave equal values).
    # test_scores_do_not_depend_on_the_batch checks the same property at float32 precision.
    "check_methods_subset_invariance": "float32 network: scores agree to float32 rounding, not to 1e-7",
}


def test_ffoneclass_passes_sklearn_estimator_checks():
    estimator = FFOneClass(epochs=2, hidden_layer_sizes=(8,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_estimator(estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS)


def test_scores_do_not_depend_on_the_batch():
    rng = np.random.default_rng(0)
    detector = FFOneClass(epochs=3, random_state=0).fit(rng.normal(size=(300, 6)))
    X = rng.normal(size=(50, 6))
    full = detector.decision_function(X)
    one_by_one = np.concatenate([detector.decision_function(X[i:i + 1]) for i in range(len(X))])
    in_pieces = np.concatenate([detector.decision_function(X[i:i + 7]) for i in range(0, len(X), 7)])
    # float32 activations: relative error of a few units of 2**-23 per layer.
    np.testing.assert_allclose(one_by_one, full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(in_pieces, full, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(detector.predict(X[:10]), detector.predict(X)[:10])
