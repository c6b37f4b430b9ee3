"""Checkpoints of online training: resume gives the run that never stopped."""

import numpy as np
import pandas as pd
import pytest
import torch

import ffoc
from ffoc import FFOneClass
from ffoc.checkpoint import load_checkpoint, save_checkpoint
from ffoc.cli import main
from ffoc.persistence import ModelFileError

SMALL = dict(hidden_layer_sizes=(16, 16), batch_size=32, random_state=0)


def _assert_identical(a, b, X):
    for (name, wa), wb in zip(a.layers_.state_dict().items(), b.layers_.state_dict().values()):
        assert torch.equal(wa, wb), f"weight {name} differs"
    assert np.array_equal(a.scaler_.mean_, b.scaler_.mean_)
    assert np.array_equal(a.scaler_.var_, b.scaler_.var_)
    assert [s.radius2 for s in a.states_] == [s.radius2 for s in b.states_]
    assert a.offset_ == b.offset_
    assert np.array_equal(a.score_samples(X), b.score_samples(X))


@pytest.mark.parametrize("stop_after", [1, 3])  # inside the warm-up, and after it
@pytest.mark.parametrize("params", [{}, {"forgetting": 1e-3}, {"trainer": "bp"}])
def test_checkpoint_resume_bit_identical(tmp_path, stop_after, params):
    rng = np.random.default_rng(0)
    chunks = [rng.normal(size=(300, 4)) for _ in range(6)]
    straight = FFOneClass(**SMALL, **params).fit_stream(chunks)

    interrupted = FFOneClass(**SMALL, **params).fit_stream(chunks[:stop_after])
    path = tmp_path / "run.checkpoint.safetensors"
    save_checkpoint(interrupted, path, progress={"chunks_done": stop_after})
    del interrupted
    resumed, progress = load_checkpoint(path)
    assert progress == {"chunks_done": stop_after}
    for chunk in chunks[stop_after:]:
        resumed.partial_fit(chunk)

    _assert_identical(straight, resumed, rng.normal(size=(30, 4)))
    assert straight._stream.n_steps == resumed._stream.n_steps


def test_checkpoint_loads_as_model(tmp_path):
    rng = np.random.default_rng(0)
    detector = FFOneClass(**SMALL).fit_stream([rng.normal(size=(600, 4))])
    path = tmp_path / "run.checkpoint.safetensors"
    save_checkpoint(detector, path)
    model = ffoc.load(path)
    X = rng.normal(size=(10, 4))
    assert np.array_equal(model.score_samples(X), detector.score_samples(X))


def test_checkpoint_of_fit_model_raises(tmp_path):
    detector = FFOneClass(epochs=1, **SMALL).fit(np.random.default_rng(0).normal(size=(100, 4)))
    with pytest.raises(ValueError, match="no online-training state"):
        save_checkpoint(detector, tmp_path / "c.safetensors")


def test_load_checkpoint_rejects_model_file(tmp_path):
    detector = FFOneClass(epochs=1, **SMALL).fit(np.random.default_rng(0).normal(size=(100, 4)))
    detector.save(tmp_path / "model.safetensors")
    with pytest.raises(ModelFileError, match="without online-training state"):
        load_checkpoint(tmp_path / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_cli_stream_resume_equals_uninterrupted(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    label = (rng.random(3000) < 0.05).astype(int)
    X[label == 1] += 5.0
    data = tmp_path / "rows.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=label).to_csv(data, index=False)
    common = [str(data), "--stream", "--chunk-size", "400", "--label-column", "label", "--normal-label", "0",
              "--hidden-layer-sizes", "16,16", "--batch-size", "32"]

    assert main(["fit", *common, "--out", str(tmp_path / "straight.safetensors")]) == 0
    # A run with checkpoints every 3 chunks; its last checkpoint stands for an interrupted run.
    assert main(["fit", *common, "--out", str(tmp_path / "first.safetensors"), "--checkpoint-every", "3"]) == 0
    checkpoint = tmp_path / "first.checkpoint.safetensors"
    assert load_checkpoint(checkpoint)[1]["chunks_done"] == 6
    assert main(["fit", *common, "--out", str(tmp_path / "resumed.safetensors"),
                 "--checkpoint", str(checkpoint), "--resume"]) == 0
    assert "in 8 chunks" in capsys.readouterr().out

    straight = ffoc.load(tmp_path / "straight.safetensors")
    resumed = ffoc.load(tmp_path / "resumed.safetensors")
    probe = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "b", "c"])
    _assert_identical(straight, resumed, probe)


def test_cli_resume_rejects_other_options(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(600, 2)), columns=["a", "b"]).to_csv(data, index=False)
    out = str(tmp_path / "m.safetensors")
    assert main(["fit", str(data), "--stream", "--chunk-size", "200", "--checkpoint-every", "1", "--out", out]) == 0
    assert main(["fit", str(data), "--stream", "--chunk-size", "100", "--resume", "--out", out]) == 1
    assert "chunk size" in capsys.readouterr().err
    assert main(["fit", str(data), "--stream", "--chunk-size", "200", "--nu", "0.2", "--resume", "--out", out]) == 1
    assert "nu (0.05 in the checkpoint, 0.2 now)" in capsys.readouterr().err


def test_cli_stream_verbose_shows_progress(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(600, 3)), columns=["a", "b", "c"]).to_csv(data, index=False)
    out = tmp_path / "m.safetensors"
    arguments = [str(data), "--stream", "--chunk-size", "200", "--hidden-layer-sizes", "8", "--out", str(out)]

    assert main(["fit", *arguments, "-v"]) == 0
    err = capsys.readouterr().err
    assert "stream" in err
    assert "3chunk" in err
    assert "rows=600" in err

    assert main(["fit", *arguments]) == 0
    assert "chunk" not in capsys.readouterr().err
