"""Shared fixtures: fixed threads and small synthetic data sets."""

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def shifted_blobs():
    """300 normal rows and 15 rows shifted by +6 in every feature; labels 1 = anomaly."""
    generator = np.random.default_rng(42)
    normal = generator.normal(size=(300, 5))
    anomalies = generator.normal(size=(15, 5)) + 6.0
    return normal, anomalies


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not found; these tests need the benchmark data")
    return SHARED_DATA
