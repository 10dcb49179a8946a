"""Batch prediction (local streaming and Dask) and the compiled backends' parity gate."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.serving.conftest import Registered, training_frame

from loopml.cli import main
from loopml.core import ConfigError, GateFailed, SchemaError, Workspace
from loopml.serving import compile_model, find_compiled, load_registered, predict_parquet


def loaded_model(registered: Registered):  # type: ignore[no-untyped-def]
    workspace = Workspace.open(registered.root)
    return load_registered("fraud@champion", tracking_uri=workspace.tracking_uri)


def scoring_frame(n: int, seed: int = 3) -> pd.DataFrame:
    frame = training_frame(n, seed).drop(columns="y")
    frame.insert(0, "row_id", np.arange(n))
    frame.loc[::13, "x2"] = np.nan
    return frame


def test_batch_prediction_streams_and_matches_the_model(
    registered: Registered, tmp_path: Path
) -> None:
    loaded = loaded_model(registered)
    frame = scoring_frame(20_000)
    source = tmp_path / "in.parquet"
    frame.to_parquet(source, row_group_size=5_000)
    result = predict_parquet(loaded, source, tmp_path / "out.parquet", batch_size=1_000)
    out = pd.read_parquet(result.output)
    assert result.rows == 20_000 and list(out.columns) == ["row_id", "prediction", "model_version"]
    assert out["row_id"].tolist() == list(range(20_000))
    assert (out["model_version"] == 1).all()
    np.testing.assert_allclose(out["prediction"], loaded.predict_scores(frame), rtol=0, atol=1e-12)
    assert pq.ParquetFile(result.output).metadata.num_row_groups == 20  # one a batch


def test_batch_memory_is_bounded_by_the_batch_not_the_input(
    registered: Registered, tmp_path: Path
) -> None:
    loaded = loaded_model(registered)
    peaks = []
    # 10 batches against 50: both well past the few batches the pipeline holds in flight
    # (two scoring threads, a bounded queue to the writer), so both reach its steady state
    for n in (50_000, 250_000):
        source = tmp_path / f"in{n}.parquet"
        scoring_frame(n).to_parquet(source, row_group_size=5_000)
        tracemalloc.start()  # numpy/pandas allocations (the encoded matrix, scores, frames)
        predict_parquet(loaded, source, tmp_path / f"out{n}.parquet", batch_size=5_000)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 5x the rows, same batch size: memory that grew with the input would be about 5x; the
    # peak swings up to 1.4x between runs with how many scored slices wait for the writer
    assert peaks[1] < 2 * peaks[0], peaks


def test_batch_bad_input_names_the_file_and_leaves_nothing(
    registered: Registered, tmp_path: Path
) -> None:
    loaded = loaded_model(registered)
    folder = tmp_path / "data"
    folder.mkdir()
    source = folder / "in.parquet"
    scoring_frame(100).drop(columns="x3").to_parquet(source)
    target = folder / "out.parquet"
    expected = r"in\.parquet lacks the model's input column\(s\) \['x3'\]"
    with pytest.raises(SchemaError, match=expected):
        predict_parquet(loaded, source, target)
    assert list(folder.iterdir()) == [source]
    wrong_type = scoring_frame(100).assign(x1="text")
    wrong_type.to_parquet(source)
    with pytest.raises(SchemaError, match="column 'x1' is categorical"):
        predict_parquet(loaded, source, target)
    assert list(folder.iterdir()) == [source]  # the half-written output is gone too


def test_dask_scores_partitions_in_parallel_identically(
    registered: Registered, tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    loaded = loaded_model(registered)
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = scoring_frame(9_000)
    for i in range(3):
        frame.iloc[i * 3_000 : (i + 1) * 3_000].to_parquet(folder / f"part-{i}.parquet")
    local = predict_parquet(loaded, folder, tmp_path / "local.parquet", batch_size=2_000)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        remote = predict_parquet(loaded, folder, tmp_path / "dask", compute=client)
    assert remote.rows == local.rows == 9_000
    got = pd.read_parquet(tmp_path / "dask")
    want = pd.read_parquet(tmp_path / "local.parquet")
    assert len(list((tmp_path / "dask").glob("*.parquet"))) == 3
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=True)


def test_cli_predict_and_unknown_alias(
    registered: Registered, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.parquet"
    scoring_frame(500).to_parquet(source)
    target = tmp_path / "out.parquet"
    args = [
        "predict",
        "--model",
        "fraud@champion",
        "--input",
        str(source),
        "--output",
        str(target),
        "--dir",
        str(registered.root),
    ]
    assert main(args) == 0
    assert "scored 500 rows with fraud version 1" in capsys.readouterr().out
    assert len(pd.read_parquet(target)) == 500
    args[2] = "fraud@staging"
    assert main(args) == 2  # NotFoundError: a usage problem
    assert "model 'fraud' has no alias 'staging'" in capsys.readouterr().err


def test_onnx_backend_passes_its_gate_and_is_found(registered: Registered, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx backend is optional")
    pytest.importorskip("onnxmltools", reason="the onnx backend is optional")
    loaded = loaded_model(registered)
    held_out = scoring_frame(2_000, seed=11)
    report = compile_model(loaded, held_out, backend="onnx", out_dir=tmp_path)
    assert report.passed and report.max_abs_diff <= 1e-5 and report.rows == 2_000
    scorer, backend = find_compiled(tmp_path, loaded)  # type: ignore[misc]
    matrix = loaded.model.encoder.transform(held_out)
    assert backend == "onnx"
    np.testing.assert_allclose(scorer(matrix), loaded.booster.predict(matrix), atol=1e-5)
    # float32 is not exact: a zero tolerance fails the gate, and a failed gate is never served
    with pytest.raises(GateFailed, match="differs from the native model"):
        compile_model(loaded, held_out, backend="onnx", out_dir=tmp_path, tolerance=0.0)
    assert find_compiled(tmp_path, loaded) is None
    with pytest.raises(ConfigError, match="backend"):
        compile_model(loaded, held_out, backend="xgboost", out_dir=tmp_path)


def test_a_tampered_artifact_is_not_loaded(registered: Registered, tmp_path: Path) -> None:
    pytest.importorskip("onnxmltools", reason="the onnx backend is optional")
    loaded = loaded_model(registered)
    compile_model(loaded, scoring_frame(300), backend="onnx", out_dir=tmp_path)
    artifact = tmp_path / "fraud" / "1" / "onnx" / "model.onnx"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    assert find_compiled(tmp_path, loaded) is None


@pytest.mark.slow
def test_tl2cgen_backend_is_exact(registered: Registered, tmp_path: Path) -> None:
    pytest.importorskip("tl2cgen", reason="install loopml[compile]")
    loaded = loaded_model(registered)
    held_out = scoring_frame(3_000, seed=12)
    report = compile_model(loaded, held_out, backend="tl2cgen", out_dir=tmp_path)
    assert report.passed and report.max_abs_diff <= 1e-9
    scorer, backend = find_compiled(tmp_path, loaded, "tl2cgen")  # type: ignore[misc]
    one = loaded.model.encoder.transform(held_out.head(1))
    assert backend == "tl2cgen" and abs(scorer(one)[0] - loaded.booster.predict(one)[0]) < 1e-12


def test_empty_input_gives_a_typed_empty_output(registered: Registered, tmp_path: Path) -> None:
    loaded = loaded_model(registered)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(scoring_frame(10).head(0), preserve_index=False), source)
    result = predict_parquet(loaded, source, tmp_path / "out.parquet")
    out = pd.read_parquet(result.output)
    assert result.rows == 0 and list(out.columns) == ["row_id", "prediction", "model_version"]


def test_cli_compile_runs_the_gate(
    registered: Registered, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxmltools", reason="the onnx backend is optional")
    held_out = tmp_path / "held_out.parquet"
    scoring_frame(500, seed=5).to_parquet(held_out)
    base = ["compile", "--model", "fraud/1", "--backend", "onnx", "--dir", str(registered.root)]
    assert main([*base, "--data", str(held_out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and report["rows"] == 500
    stored = registered.root / ".loopml" / "compiled" / "fraud" / "1" / "onnx" / "parity.json"
    assert json.loads(stored.read_text())["max_abs_diff"] == report["max_abs_diff"]
    assert main([*base, "--data", str(held_out), "--tolerance", "0"]) == 1
    assert "differs from the native model" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "nope.parquet")]) == 2
