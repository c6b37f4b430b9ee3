"""The ffoc command line, end to end on the bundled banknote data."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ffoc.cli import main
from ffoc.datasets import load_banknote

FAST = ["--epochs", "3", "--hidden-layer-sizes", "16,16"]


@pytest.fixture(scope="module")
def banknote_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("banknote")
    frame = load_banknote(as_frame=True).frame
    path = folder / "banknote.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_cli_fit_score_info_round_trip(banknote_csv, tmp_path, capsys):
    path, frame = banknote_csv
    label = frame.columns[-1]
    model = tmp_path / "model.safetensors"
    assert main(["fit", str(path), "--out", str(model), "--label-column", label, "--normal-label", "0", *FAST]) == 0
    assert model.is_file()
    assert "model saved" in capsys.readouterr().out

    scores_path = tmp_path / "scores.csv"
    assert main(["score", str(model), str(path), "--label-column", label, "--output", str(scores_path)]) == 0
    scores = pd.read_csv(scores_path)
    assert list(scores.columns) == ["score_samples", "decision_function", "label"]
    assert len(scores) == len(frame)
    assert set(scores["label"]) <= {-1, 1}
    forged = frame[label].to_numpy() == 1
    assert scores["score_samples"][forged].mean() < scores["score_samples"][~forged].mean()

    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_features_in"] == 4
    assert info["layers"] == [16, 16]


def test_cli_score_to_stdout_and_parquet(banknote_csv, tmp_path, capsys):
    path, frame = banknote_csv
    features = frame.drop(columns=frame.columns[-1])
    parquet = tmp_path / "features.parquet"
    features.to_parquet(parquet)
    model = tmp_path / "model.safetensors"
    assert main(["fit", str(parquet), "--out", str(model), *FAST]) == 0
    capsys.readouterr()
    assert main(["score", str(model), str(parquet)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "score_samples,decision_function,label"
    assert len(lines) == len(frame) + 1
    out = tmp_path / "scores.parquet"
    assert main(["score", str(model), str(parquet), "--output", str(out)]) == 0
    assert len(pd.read_parquet(out)) == len(frame)


def test_cli_headerless_file(tmp_path):
    source = Path(__file__).resolve().parents[1] / "src" / "ffoc" / "datasets" / "data" / "data_banknote_authentication.txt"
    data = tmp_path / "banknote.txt"
    shutil.copy(source, data)
    model = tmp_path / "model.safetensors"
    code = main(["fit", str(data), "--no-header", "--label-column", "4", "--normal-label", "0",
                 "--out", str(model), *FAST])
    assert code == 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["fit", "missing.csv", "--out", "m.safetensors"], "not found"),
        (["score", "missing.safetensors", "x.csv"], "not found"),
        (["score", ".", "x.csv"], "is a folder"),
        (["fit", "x.csv", "--out", "m.safetensors", "--resume"], "--resume applies only with --stream"),
        (["fit", "x.csv", "--out", "m.safetensors", "--chunk-size", "5", "--checkpoint-every", "1"],
         "--chunk-size, --checkpoint-every apply only with --stream"),
        (["fit", "x.csv", "--out", "m.safetensors", "--stream", "--checkpoint", "x.csv", "--checkpoint-every", "1"],
         "--checkpoint 'x.csv' is the input file"),
        (["fit", "x.csv", "--out", "m.safetensors", "--stream", "--checkpoint", "m.safetensors",
          "--checkpoint-every", "1"],
         "is the --out file"),
        (["fit", "x.csv", "--out", "/dev/null"], "not a regular file"),
        (["score", "m.safetensors", "x.csv", "--output", ""], "--output is empty"),
        (["fit", "x.csv", "--out", ""], "--out is empty"),
        (["fit", "x.csv", "--out", "m.safetensors", "--stream", "--checkpoint", "c.safetensors"],
         "written only with --checkpoint-every"),
        (["fit", "x.csv", "--out", "m.safetensors", "--forgetting", "0"], "--forgetting applies only with --stream"),
        (["fit", "x.csv", "--out", "readonly.safetensors", "--epochs", "1"], "is read-only"),
    ],
)
def test_cli_errors_are_one_line(arguments, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(30)), encoding="utf-8")
    (tmp_path / "readonly.safetensors").write_bytes(b"old")
    (tmp_path / "readonly.safetensors").chmod(0o444)
    assert main(arguments) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_cli_fit_rejects_unknown_label_column(banknote_csv, tmp_path, capsys):
    path, _ = banknote_csv
    assert main(["fit", str(path), "--out", str(tmp_path / "m.safetensors"), "--label-column", "nope"]) == 1
    assert "nope" in capsys.readouterr().err


def test_cli_fit_rejects_non_numeric_data(tmp_path, capsys):
    data = tmp_path / "text.csv"
    data.write_text("a,b\n1,x\n2,y\n")
    assert main(["fit", str(data), "--out", str(tmp_path / "m.safetensors"), *FAST]) == 1
    assert "'b'" in capsys.readouterr().err


def test_cli_score_rejects_wrong_columns(banknote_csv, tmp_path, capsys):
    path, frame = banknote_csv
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(path), "--out", str(model), "--label-column", frame.columns[-1], *FAST]) == 0
    other = tmp_path / "other.csv"
    pd.DataFrame(np.zeros((3, 2)), columns=["p", "q"]).to_csv(other, index=False)
    capsys.readouterr()
    assert main(["score", str(model), str(other)]) == 1
    assert "feature" in capsys.readouterr().err


def test_cli_score_rejects_corrupted_model(banknote_csv, tmp_path, capsys):
    path, _ = banknote_csv
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert main(["score", str(model), str(path)]) == 1
    assert "m.safetensors" in capsys.readouterr().err


def test_cli_bad_option_value_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "x.csv", "--out", "m", "--hidden-layer-sizes", "a,b"])
    assert exit_info.value.code == 2


def test_cli_demo_prints_metrics_for_both_trainers(capsys):
    assert main(["demo", "--splits", "1"]) == 0
    out = capsys.readouterr().out
    assert "AUROC" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in ("ff", "bp")}
    assert set(rows) == {"ff", "bp"}
    auroc = float(rows["ff"].split()[7])
    assert auroc > 0.95


def test_cli_fit_refuses_to_overwrite_its_input(banknote_csv, tmp_path, capsys):
    path, _ = banknote_csv
    copy = tmp_path / "data.csv"
    shutil.copy(path, copy)
    before = copy.read_bytes()
    assert main(["fit", str(copy), "--out", str(copy), *FAST]) == 1
    assert "input file" in capsys.readouterr().err
    assert copy.read_bytes() == before


def test_cli_fit_checks_output_folder_before_training(banknote_csv, tmp_path, capsys):
    path, _ = banknote_csv
    assert main(["fit", str(path), "--out", str(tmp_path / "missing" / "m.safetensors"), *FAST]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_long_output_name_is_written(banknote_csv, tmp_path):
    path, frame = banknote_csv
    model = tmp_path / ("b" * 240 + ".safetensors")
    assert main(["fit", str(path), "--out", str(model), "--label-column", frame.columns[-1], *FAST]) == 0
    assert model.is_file()


def test_cli_os_error_is_one_line(banknote_csv, tmp_path, capsys):
    path, _ = banknote_csv
    assert main(["fit", str(path), "--out", str(tmp_path / ("a" * 300 + ".safetensors")), *FAST]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_score_ignores_columns_the_model_does_not_use(banknote_csv, tmp_path, capsys):
    path, frame = banknote_csv
    label = frame.columns[-1]
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(path), "--out", str(model), "--label-column", label, "--normal-label", "0", *FAST]) == 0
    capsys.readouterr()
    assert main(["score", str(model), str(path), "--output", str(tmp_path / "s.csv")]) == 0
    assert label in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(frame)


def test_cli_demo_rejects_zero_splits(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--splits", "0"])
    assert "give a positive integer" in capsys.readouterr().err


def test_cli_resume_rejects_other_data(tmp_path, capsys):
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=["a", "b", "c"])
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    frame.to_csv(first, index=False)
    frame.to_csv(second, index=False)
    common = ["--stream", "--chunk-size", "100", "--checkpoint-every", "1", "--hidden-layer-sizes", "8",
              "--out", str(tmp_path / "m.safetensors")]
    assert main(["fit", str(first), *common]) == 0
    capsys.readouterr()
    assert main(["fit", str(second), *common, "--resume"]) == 1
    assert "resume with the same DATA" in capsys.readouterr().err


def test_cli_score_rejects_image_model(tmp_path, capsys):
    from ffoc.images import FFOneClassImage

    images = np.random.default_rng(0).random((20, 8, 8))
    model = tmp_path / "images.safetensors"
    FFOneClassImage(epochs=1, random_state=0).fit(images).save(model)
    data = tmp_path / "rows.csv"
    pd.DataFrame(np.zeros((3, 64))).to_csv(data, index=False)
    assert main(["score", str(model), str(data)]) == 1
    assert "score a folder of images with ffoc score-images" in capsys.readouterr().err


def test_cli_resume_rejects_other_normal_label(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"]).assign(y=rng.choice(["n", "o"], 300))
    data = tmp_path / "labelled.csv"
    frame.to_csv(data, index=False)
    common = [str(data), "--stream", "--chunk-size", "100", "--checkpoint-every", "1", "--hidden-layer-sizes", "8",
              "--label-column", "y", "--out", str(tmp_path / "m.safetensors")]
    assert main(["fit", *common, "--normal-label", "n"]) == 0
    capsys.readouterr()
    assert main(["fit", *common, "--normal-label", "o", "--resume"]) == 1
    assert "--normal-label 'n', not 'o'" in capsys.readouterr().err


def test_cli_stream_one_row_warns_flat_scores(tmp_path, capsys):
    data = tmp_path / "one.csv"
    pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}).to_csv(data, index=False)
    with pytest.warns(UserWarning, match="after 1 row seen, every training row so far gets nearly the same score"):
        code = main(["fit", str(data), "--stream", "--hidden-layer-sizes", "8", "--out", str(tmp_path / "m.safetensors")])
    assert code == 0
    assert "online on 1 row x 3 features, read in 1 chunk of up to 10000 rows" in capsys.readouterr().out


def test_cli_stream_shorter_than_warm_up_warns(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=["a", "b", "c"]).to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        code = main(["fit", str(data), "--stream", "--chunk-size", "1", "--hidden-layer-sizes", "8",
                     "--out", str(model)])
    assert code == 0
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    assert "fewer than the warm-up of 512 rows" in messages[0]
    assert "ffoc fit without --stream" in messages[0]
    capsys.readouterr()

    assert main(["info", str(model)]) == 0
    assert json.loads(capsys.readouterr().out)["n_optimizer_steps"] == 0


def test_cli_info_shows_stream_training(tmp_path, capsys):
    data = tmp_path / "rows.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(1500, 3)), columns=["a", "b", "c"]).to_csv(data, index=False)
    streamed, fitted = tmp_path / "streamed.safetensors", tmp_path / "fitted.safetensors"
    assert main(["fit", str(data), "--stream", "--chunk-size", "400", "--hidden-layer-sizes", "8",
                 "--out", str(streamed)]) == 0
    assert main(["fit", str(data), "--epochs", "2", "--hidden-layer-sizes", "8", "--out", str(fitted)]) == 0
    capsys.readouterr()

    assert main(["info", str(streamed)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["trained_with"] == "partial_fit"
    assert info["n_samples_seen"] == 1500
    assert info["n_partial_fit_calls"] == 4
    assert info["n_optimizer_steps"] == 14  # no step in the 400-row warm-up call, then 7 + 4 + 3 batches of 128
    assert "epochs_trained" not in info

    assert main(["info", str(fitted)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["trained_with"] == "fit"
    assert info["epochs_trained"] == 2
    assert "n_partial_fit_calls" not in info


def test_cli_fit_missing_value_location_is_plain(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("a,b\n1,,\n")
    assert main(["fit", str(data), "--out", str(tmp_path / "m.safetensors")]) == 1
    error = capsys.readouterr().err
    assert "NaN at row 0, column 'b'" in error
    assert "np.int64" not in error


def test_cli_score_huge_value_names_column(tmp_path, capsys):
    train, huge = tmp_path / "train.csv", tmp_path / "huge.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(200, 2)), columns=["a", "b"]).to_csv(train, index=False)
    huge.write_text("a,b\n0,1e308\n")
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(train), "--epochs", "1", "--hidden-layer-sizes", "4", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["score", str(model), str(huge)]) == 1
    assert "value 1e+308 at row 0, column 'b' is too large" in capsys.readouterr().err


def test_cli_score_header_mismatch_suggests_no_header_change(banknote_csv, tmp_path, capsys):
    path, frame = banknote_csv
    named = tmp_path / "named.safetensors"
    assert main(["fit", str(path), "--out", str(named), "--label-column", "class", *FAST]) == 0
    capsys.readouterr()
    assert main(["score", str(named), str(path), "--no-header"]) == 1
    error = capsys.readouterr().err
    assert "DATA has the columns ['0', '1', '2', '3', '4']" in error
    assert "drop --no-header" in error

    headerless = tmp_path / "headerless.csv"
    frame.to_csv(headerless, index=False, header=False)
    numbered = tmp_path / "numbered.safetensors"
    assert main(["fit", str(headerless), "--no-header", "--label-column", "4", "--out", str(numbered), *FAST]) == 0
    capsys.readouterr()
    assert main(["score", str(numbered), str(path)]) == 1
    error = capsys.readouterr().err
    assert "DATA has the columns ['variance', 'skewness', 'curtosis', 'entropy', 'class']" in error
    assert "add --no-header" in error


def test_cli_stream_summary_counts_rows_read_and_kept(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(700, 2)), columns=["a", "b"]).assign(y=np.arange(700) % 2)
    data = tmp_path / "labelled.csv"
    frame.to_csv(data, index=False)
    code = main(["fit", str(data), "--stream", "--chunk-size", "64", "--label-column", "y", "--normal-label", "0",
                 "--hidden-layer-sizes", "8", "--out", str(tmp_path / "m.safetensors")])
    assert code == 0
    assert ("online on 350 rows x 2 features, the rows with y = 0 among 700 read in 11 chunks of up to 64 rows"
            in capsys.readouterr().out)


def test_cli_summaries_use_singular_for_one(tmp_path, capsys):
    from ffoc.cli.model import write_scores

    write_scores(np.array([0.0]), 1.0, str(tmp_path / "one.csv"), "row")
    assert "scored 1 row, 1 outlier;" in capsys.readouterr().out
    write_scores(np.array([0.0, 2.0, 3.0]), 1.0, str(tmp_path / "three.csv"), "image")
    assert "scored 3 images, 1 outlier;" in capsys.readouterr().out

    data = tmp_path / "rows.csv"
    pd.DataFrame({"a": np.arange(20.0)}).to_csv(data, index=False)
    assert main(["fit", str(data), "--out", str(tmp_path / "m.safetensors"), "--contamination", "0.05", *FAST]) == 0
    assert "on 20 rows x 1 feature; 1 training row falls outside the threshold" in capsys.readouterr().out
