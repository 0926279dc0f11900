"""Out-of-core fit (issue #15): AIMSynthesizer (and DPVAESynthesizer, below) fitted from a Parquet file, a directory of
Parquet files, a CSV file or DataFrame chunks is the same fit as on the DataFrame, never holds
more than one column or one batch of rows, and bad input is a clear error.  Memory and speed
against the number of rows are measured by benchmarks/bench_out_of_core.py (docs/scale.md)."""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nhssynth import (AIMSynthesizer, DPVAESynthesizer, MarginalSynthesizer, Metadata,
                      TableSource)
from nhssynth.exceptions import MetadataError

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install 'nhssynth[parquet]'")
pq = pytest.importorskip("pyarrow.parquet")

FAST = dict(epsilon=1.0, rounds=4, iterations=30, random_state=0)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Categories, a nullable integer, a bool, floats with missing values, datetimes, strings."""
    rng = np.random.default_rng(0)
    n = 3000
    age = rng.integers(18, 95, n)
    return pd.DataFrame({
        "sex": pd.Categorical(rng.choice(["F", "M"], n, p=[0.45, 0.55])),
        "age": age,
        "dx": np.where(age > 60, rng.choice(["E10", "E11", "I10"], n), rng.choice(["J45", "E10"], n)).astype(object),
        "count": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
        "smoker": rng.random(n) < 0.3,
        "bmi": np.where(rng.random(n) < 0.1, np.nan, rng.normal(27, 4, n).round(1)),
        "admitted": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), "D"),
    })


def _fit(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AIMSynthesizer(**{**FAST, **kw}).fit(X)


@pytest.fixture(scope="module")
def in_memory(table):
    return _fit(table)


def _same_fit(a: AIMSynthesizer, b: AIMSynthesizer) -> None:
    assert a.measured_ == b.measured_
    assert a.epsilon_ == b.epsilon_
    assert a.metadata_ == b.metadata_
    pd.testing.assert_frame_equal(a.sample(400, random_state=3), b.sample(400, random_state=3))


def test_parquet_file_is_the_same_fit_as_the_dataframe(table, in_memory, tmp_path):
    path = tmp_path / "t.parquet"
    table.to_parquet(path, row_group_size=700)
    model = _fit(path)
    _same_fit(in_memory, model)
    fake = model.sample(200, random_state=0)
    assert list(fake.columns) == list(table.columns)
    assert not any(isinstance(v, TableSource) for v in vars(model).values())


def test_directory_of_parquet_files_and_str_path(table, in_memory, tmp_path):
    for i, start in enumerate(range(0, len(table), 1000)):
        table.iloc[start:start + 1000].to_parquet(tmp_path / f"part-{i}.parquet")
    _same_fit(in_memory, _fit(str(tmp_path)))


def test_chunk_iterator_and_csv_are_the_same_fit(tmp_path):
    """A one-shot generator of chunks and a semicolon CSV (delimiter sniffed, read in blocks)
    fit the same model as the DataFrame that pandas reads from the same CSV."""
    rng = np.random.default_rng(1)
    n = 2500
    df = pd.DataFrame({"group": rng.choice(["a", "b", "c"], n), "x": rng.normal(0, 1, n).round(3),
                       "y": rng.integers(0, 50, n)})
    df["z"] = np.where(df["group"] == "a", df["y"] * 2, rng.integers(0, 100, n))
    path = tmp_path / "t.csv"
    df.to_csv(path, sep=";", index=False)
    reference = _fit(pd.read_csv(path, sep=";"))
    chunks = (df.iloc[i:i + 600] for i in range(0, n, 600))
    _same_fit(reference, _fit(chunks))
    _same_fit(reference, _fit(path))
    source = TableSource.open(path, batch_rows=400)
    try:
        _same_fit(reference, _fit(source))
    finally:
        source.close()


def test_fit_reads_one_column_or_one_batch_at_a_time(table, in_memory, tmp_path, monkeypatch):
    """The fit's only reads are whole single columns and batches of at most ``batch_rows``
    rows: the table is never in memory as a whole."""
    path = tmp_path / "t.parquet"
    table.to_parquet(path, row_group_size=500)
    source = TableSource.open(path, batch_rows=250)
    columns, batches = [], []
    get, frames = TableSource.__getitem__, TableSource.iter_frames

    def spy_get(self, name):
        columns.append(name)
        return get(self, name)

    def spy_frames(self, cols=None):
        for frame in frames(self, cols):
            batches.append(frame.shape)
            yield frame
    monkeypatch.setattr(TableSource, "__getitem__", spy_get)
    monkeypatch.setattr(TableSource, "iter_frames", spy_frames)
    _same_fit(in_memory, _fit(source))
    assert set(columns) == set(table.columns)
    assert batches and max(rows for rows, _ in batches) <= 250
    assert sum(rows for rows, _ in batches) == 2 * len(table)  # validation + counting passes


def test_missing_drop_rows_are_dropped_as_in_memory(table, tmp_path):
    md = Metadata.from_dataframe(table).update("bmi", missing="drop")
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    a, b = _fit(table, metadata=md), _fit(path, metadata=md)
    _same_fit(a, b)


def test_a_source_can_be_fitted_again_with_other_metadata(table, tmp_path):
    """A user's TableSource is reused: the rows one fit drops (missing="drop") are not
    missing from the next fit, and the context manager leaves a Parquet source's files."""
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    md = Metadata.from_dataframe(table)
    with TableSource.open(path, batch_rows=1000) as source:
        assert len(source) == len(table) and "age" in source and "3000 rows" in repr(source)
        _same_fit(_fit(table, metadata=md.update("bmi", missing="drop")),
                  _fit(source, metadata=md.update("bmi", missing="drop")))
        assert len(source) < len(table)
        _same_fit(_fit(table, metadata=md), _fit(source, metadata=md))
    assert path.exists()


def test_temporary_copy_is_deleted_after_fit_and_after_a_failed_fit(table, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _fit(iter([table.iloc[:1500], table.iloc[1500:]]))
    assert not list(tmp_path.glob("nhssynth-table-*"))
    with pytest.raises(MetadataError):
        _fit(iter([table.iloc[:1500], table.iloc[1500:].drop(columns="bmi")]))
    assert not list(tmp_path.glob("nhssynth-table-*"))


# -- bad input -------------------------------------------------------------------------------
def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or directory.*Parquet"):
        AIMSynthesizer().fit(tmp_path / "absent.parquet")


def test_parquet_files_with_different_schemas_name_the_file(table, tmp_path):
    table.iloc[:1000].to_parquet(tmp_path / "a.parquet")
    table.iloc[1000:].assign(age=lambda d: d["age"].astype(str)).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(MetadataError, match=r"b\.parquet.*different schema.*'age'"):
        AIMSynthesizer().fit(tmp_path)


def test_chunks_with_different_columns_name_the_chunk(table):
    chunks = [table.iloc[:1000], table.iloc[1000:2000], table.iloc[2000:].drop(columns="age")]
    with pytest.raises(MetadataError, match=r"chunk 2 has different columns.*missing \['age'\]"):
        AIMSynthesizer().fit(iter(chunks))
    with pytest.raises(MetadataError, match="chunk 1 is a ndarray"):
        AIMSynthesizer().fit(iter([table, np.zeros((3, 3))]))
    with pytest.raises(MetadataError, match="hold no rows"):
        AIMSynthesizer().fit(iter([table.iloc[:0]]))


def test_a_value_outside_the_metadata_in_a_late_batch_is_caught(table, tmp_path):
    md = Metadata.from_dataframe(table)
    bad = table.copy()
    bad["dx"] = bad["dx"].astype(object)
    bad.loc[len(bad) - 1, "dx"] = "Z99"
    path = tmp_path / "t.parquet"
    bad.to_parquet(path, row_group_size=500)
    declared = md.update("dx", categories=["E10", "E11", "I10", "J45"], domain="declared")
    with pytest.raises(MetadataError, match="dx"):
        _fit(path, metadata=declared)


def test_the_generator_that_needs_memory_says_which_can_fit_out_of_core(table, tmp_path):
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    match = "needs the table in memory.*AIMSynthesizer or DPVAESynthesizer"
    with pytest.raises(MetadataError, match=match):
        MarginalSynthesizer().fit(path)
    with pytest.raises(MetadataError, match=match):
        MarginalSynthesizer().fit(iter([table]))


# -- DPVAESynthesizer: DP-SGD reading its Poisson batches from the encoded rows on disk --------
VAE = dict(max_epochs=2, batch_size=300, random_state=0)


def _fit_vae(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DPVAESynthesizer(**{**VAE, **kw}).fit(X)


@pytest.mark.parametrize("epsilon", [1.0, None])
def test_dpvae_from_parquet_is_the_same_fit_as_the_dataframe(table, tmp_path, epsilon):
    """Same seed: the same released domain, encoding, Poisson batches, network, rank
    correlation, two-way marginals and samples as the in-memory fit, private or not; the encoded rows' temporary
    file is gone after the fit."""
    path = tmp_path / "t.parquet"
    table.to_parquet(path, row_group_size=700)
    kw = dict(epsilon=epsilon, allow_non_private=True)
    a, b = _fit_vae(table, **kw), _fit_vae(path, **kw)
    assert a.epsilon_ == b.epsilon_ and a.n_steps_ == b.n_steps_
    assert a.output_spans_ == b.output_spans_
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    assert (a.calibrator_ is None) == (b.calibrator_ is None)
    if a.calibrator_ is not None:
        assert a.calibrator_.pairs == b.calibrator_.pairs
        # the numeric columns' rank correlation: summed a batch at a time, the same release
        assert a.calibrator_.correlation.columns == b.calibrator_.correlation.columns
        np.testing.assert_allclose(a.calibrator_.correlation.matrix,
                                   b.calibrator_.correlation.matrix, rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(a.sample(300, random_state=3), b.sample(300, random_state=3))
    assert not any(isinstance(v, TableSource) for v in vars(b).values())
    assert not list(Path(tempfile.gettempdir()).glob("nhssynth-encoded-*"))


def test_dpvae_from_chunks_and_csv(table, tmp_path):
    csv = tmp_path / "t.csv"
    table.drop(columns=["admitted"]).to_csv(csv, index=False, sep=";")
    from_csv = _fit_vae(csv)
    chunks = (table.iloc[i:i + 800] for i in range(0, len(table), 800))
    from_chunks = _fit_vae(chunks)
    pd.testing.assert_frame_equal(from_chunks.sample(200, random_state=1),
                                  _fit_vae(table).sample(200, random_state=1))
    assert list(from_csv.sample(50, random_state=0).columns) == \
        [c for c in table.columns if c != "admitted"]


def test_dpvae_out_of_core_bad_input_and_cleanup(table, tmp_path):
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    with pytest.raises(ValueError, match="n_processes=2.*n_processes=1"):
        DPVAESynthesizer(n_processes=2).fit(path)
    with pytest.raises(ValueError, match="output_spans"):
        DPVAESynthesizer().fit(path, output_spans=[])
    # a fit that fails after the rows were encoded: no model, no encoded file left behind
    with pytest.raises(Exception, match="noise_multiplier"):
        _fit_vae(path, noise_multiplier=0.01, epsilon=0.5)
    assert not list(Path(tempfile.gettempdir()).glob("nhssynth-encoded-*"))
    model = DPVAESynthesizer(**VAE)
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        model.fit(tmp_path / "missing.parquet")
    assert not hasattr(model, "network_")


def test_constraints_need_a_dataframe(table, tmp_path):
    md = Metadata.from_dict({**Metadata.from_dataframe(table).to_dict(),
                             "constraints": [{"type": "positive", "column": "age"}]})
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    with pytest.raises(MetadataError, match="constraint.*out-of-core"):
        AIMSynthesizer(metadata=md).fit(path)


def test_unreadable_file_type(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_text("x")
    with pytest.raises(MetadataError, match=r"\.parquet or \.csv"):
        AIMSynthesizer().fit(Path(path))


@pytest.mark.parametrize("epsilon", [1.0, None])
def test_table_encoder_fits_a_table_source_like_the_dataframe(table, tmp_path, epsilon):
    from nhssynth import TableEncoder
    path = tmp_path / "t.parquet"
    table.to_parquet(path, row_group_size=900)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = TableEncoder(epsilon=epsilon, random_state=0).fit(table)
        with TableSource.open(path, batch_rows=1000) as source:
            b = TableEncoder(epsilon=epsilon, random_state=0).fit(source)
            Zb = np.concatenate([b.transform(f) for f in source.iter_frames()])
    assert a.output_spans_ == b.output_spans_ and a.metadata_ == b.metadata_
    np.testing.assert_array_equal(a.transform(table), Zb)
    pd.testing.assert_frame_equal(a.inverse_transform(Zb), b.inverse_transform(Zb))


def test_encoded_rows_reads_any_rows_in_the_order_asked_and_deletes_its_file():
    import torch

    from nhssynth.synthesizers.vae.encoded_rows import EncodedRows

    Z = np.random.default_rng(0).normal(size=(1_001, 7)).astype(np.float32)
    rows = EncodedRows.write([Z[:400], Z[400:401], Z[401:]], n_features=7)
    path = Path(rows.path)
    try:
        assert rows.shape == (1_001, 7) and path.stat().st_size == Z.nbytes
        for idx in ([0, 1, 2, 500, 501, 1000], [999, 3, 3, 42], list(range(1_001)), []):
            got = rows[torch.tensor(idx, dtype=torch.long)]
            assert got.dtype == torch.float32 and got.shape == (len(idx), 7)
            np.testing.assert_array_equal(got.numpy(), Z[idx])
        with pytest.raises(IndexError, match="out of range"):
            rows[torch.tensor([1_001])]
    finally:
        rows.close()
    assert not path.exists() and rows.path is None
    rows.close()  # idempotent
