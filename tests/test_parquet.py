"""sample_to_parquet: chunked sampling to a Parquet file (issue #15).  That memory stays flat
is measured by benchmarks/bench_scale.py (docs/scale.md), not tested here."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import nhssynth
from nhssynth import MarginalSynthesizer, NonPrivateOperationWarning, sample_to_parquet
from nhssynth.datasets import load_example

pq = pytest.importorskip("pyarrow.parquet",
                         reason="pyarrow is not installed: pip install 'nhssynth[parquet]'")


@pytest.fixture(scope="module")
def table():
    """Categories (with a category that is never drawn), nullable ints with gaps, bools,
    floats, datetimes and strings."""
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({
        "sex": pd.Categorical(rng.choice(["F", "M"], n), categories=["F", "M", "X"]),
        "grade": pd.Categorical(rng.choice(["low", "mid", "high"], n),
                                categories=["low", "mid", "high"], ordered=True),
        "count": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)),
                          dtype="Int64"),
        "flag": rng.random(n) < 0.3,
        "value": rng.normal(50, 10, n),
        "admitted": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), "D"),
    })
    return df


@pytest.fixture(scope="module")
def synth(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPrivateOperationWarning)
        return MarginalSynthesizer(random_state=0).fit(table)


def test_exported():
    assert nhssynth.sample_to_parquet is sample_to_parquet
    assert "sample_to_parquet" in nhssynth.__all__


def test_round_trip_columns_dtypes_and_rows(synth, table, tmp_path):
    path = tmp_path / "out.parquet"
    out = sample_to_parquet(synth, 2_500, path, chunk_size=1_000, random_state=3)
    assert out == path
    back = pd.read_parquet(path)
    direct = synth.sample(10, random_state=0)
    assert list(back.columns) == list(table.columns)
    assert back.dtypes.to_dict() == direct.dtypes.to_dict()
    assert back["sex"].cat.categories.tolist() == ["F", "M", "X"]  # unused category kept
    assert back["grade"].cat.ordered and back["grade"].cat.categories.tolist() == \
        ["low", "mid", "high"]
    assert back["count"].isna().any()
    assert len(back) == 2_500
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 2_500 and meta.num_row_groups == 3  # 1000 + 1000 + 500
    assert not list(tmp_path.glob(".*part"))  # no temporary file left


def test_chunks_are_the_generator_s_samples_with_per_chunk_seeds(synth, tmp_path):
    """Chunk i = generator.sample(m_i, random_state=Generator(SeedSequence(seed) child i))."""
    path = sample_to_parquet(synth, 250, tmp_path / "a.parquet", chunk_size=100, random_state=5)
    base = np.random.SeedSequence(5)
    expected = pd.concat([synth.sample(m, random_state=np.random.default_rng(child))
                          for m, child in zip([100, 100, 50], base.spawn(3))], ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(path), expected)


def test_reproducible_with_a_seed(synth, tmp_path):
    a = sample_to_parquet(synth, 1_200, tmp_path / "a.parquet", chunk_size=500, random_state=7)
    b = sample_to_parquet(synth, 1_200, tmp_path / "b.parquet", chunk_size=500, random_state=7)
    c = sample_to_parquet(synth, 1_200, tmp_path / "c.parquet", chunk_size=500, random_state=8)
    pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
    assert not pd.read_parquet(a).equals(pd.read_parquet(c))
    # for a fixed chunk size, the full chunks do not depend on n_samples
    d = sample_to_parquet(synth, 1_000, tmp_path / "d.parquet", chunk_size=500, random_state=7)
    pd.testing.assert_frame_equal(pd.read_parquet(d), pd.read_parquet(a).iloc[:1_000])
    # documented: the rows depend on the chunk size
    e = sample_to_parquet(synth, 1_200, tmp_path / "e.parquet", chunk_size=400, random_state=7)
    assert not pd.read_parquet(e).equals(pd.read_parquet(a))


def test_one_chunk_and_chunk_larger_than_n(synth, tmp_path):
    path = sample_to_parquet(synth, 3, tmp_path / "x.parquet", chunk_size=1_000, random_state=0)
    assert len(pd.read_parquet(path)) == 3
    assert pq.ParquetFile(path).metadata.num_row_groups == 1


def test_real_table_through_a_pipeline(tmp_path):
    """The bundled table (categories, nullable ints, bools, floats) through a fitted
    SynthesisPipeline."""
    df, md = load_example(return_metadata=True)
    df = df.head(1_500)
    pipe = nhssynth.make_synthesis_pipeline(MarginalSynthesizer(metadata=md, epsilon=3.0,
                                                                random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(df)
    path = sample_to_parquet(pipe, 1_001, tmp_path / "p.parquet", chunk_size=250, random_state=1)
    back = pd.read_parquet(path)
    assert len(back) == 1_001
    assert back.dtypes.to_dict() == pipe.sample(5, random_state=0).dtypes.to_dict()


def test_existing_file_needs_overwrite(synth, tmp_path):
    path = tmp_path / "out.parquet"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        sample_to_parquet(synth, 10, path)
    assert path.read_bytes() == b"old"
    sample_to_parquet(synth, 10, path, overwrite=True, random_state=0)
    assert len(pd.read_parquet(path)) == 10


@pytest.mark.parametrize("n, exc, match", [
    (0, ValueError, "positive integer"), (-5, ValueError, "positive integer"),
    (2.5, TypeError, "positive integer"), (True, TypeError, "positive integer"),
    ("10", TypeError, "positive integer")])
def test_bad_n_samples(synth, tmp_path, n, exc, match):
    with pytest.raises(exc, match=match):
        sample_to_parquet(synth, n, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5])
def test_bad_chunk_size(synth, tmp_path, chunk_size):
    with pytest.raises((ValueError, TypeError), match="chunk_size"):
        sample_to_parquet(synth, 10, tmp_path / "out.parquet", chunk_size=chunk_size)


def test_bad_paths(synth, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sample_to_parquet(synth, 10, tmp_path / "missing" / "out.parquet")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        sample_to_parquet(synth, 10, tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        sample_to_parquet(synth, 10, tmp_path / "file" / "out.parquet")
    with pytest.raises(TypeError, match="path must be"):
        sample_to_parquet(synth, 10, 123)


def test_bad_generator(tmp_path, table):
    with pytest.raises(TypeError, match="sample"):
        sample_to_parquet(object(), 10, tmp_path / "out.parquet")
    with pytest.raises(nhssynth.NotFittedError):
        sample_to_parquet(MarginalSynthesizer(), 10, tmp_path / "out.parquet")
    assert not list(tmp_path.iterdir())


class _Drifting:
    """A generator whose second chunk has another dtype (a user's own sampler gone wrong)."""

    def __init__(self):
        self.calls = 0

    def sample(self, n, random_state=None):
        self.calls += 1
        values = np.arange(n) if self.calls == 1 else np.array(["a"] * n, dtype=object)
        return pd.DataFrame({"x": values})


def test_a_chunk_with_other_dtypes_is_a_clear_error_and_leaves_no_file(tmp_path):
    path = tmp_path / "out.parquet"
    with pytest.raises(ValueError, match="chunk 1 does not fit the schema of the first chunk"):
        sample_to_parquet(_Drifting(), 20, path, chunk_size=10)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("gen", ["AIMSynthesizer", "DPVAESynthesizer", "MarginalSynthesizer"])
def test_sample_with_a_path_writes_the_same_rows_as_sample_to_parquet(gen, table, tmp_path):
    """``sample(n, path=...)`` on every generator: the same file as sample_to_parquet, rows that
    meet the conditions, the path back, and no file when the generator is not fitted."""
    params = {"max_epochs": 2, "batch_size": 200} if gen == "DPVAESynthesizer" else {}
    model = getattr(nhssynth, gen)(epsilon=5.0, random_state=0, **params)
    with pytest.raises(NotFittedError):
        model.sample(10, path=tmp_path / "early.parquet")
    assert not (tmp_path / "early.parquet").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(table)
    out = model.sample(450, random_state=2, path=tmp_path / "s.parquet", chunk_size=200)
    assert out == tmp_path / "s.parquet"
    ref = sample_to_parquet(model, 450, tmp_path / "r.parquet", chunk_size=200, random_state=2)
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, pd.read_parquet(ref))
    assert len(back) == 450 and pq.ParquetFile(out).metadata.num_row_groups == 3
    assert back.dtypes.to_dict() == model.sample(5, random_state=0).dtypes.to_dict()
    cond = model.sample(300, random_state=2, conditions={"flag": True},
                        path=tmp_path / "c.parquet", chunk_size=100)
    assert pd.read_parquet(cond)["flag"].all()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.sample(10, path=out)
    model.sample(10, path=out, overwrite=True)
    assert len(pd.read_parquet(out)) == 10


def test_pipeline_sample_with_a_path(tmp_path):
    df, md = load_example(return_metadata=True)
    pipe = nhssynth.make_synthesis_pipeline(MarginalSynthesizer(metadata=md, epsilon=3.0,
                                                                random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(df.head(1_000))
    path = pipe.sample(700, random_state=1, path=tmp_path / "p.parquet", chunk_size=300)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, pd.read_parquet(sample_to_parquet(
        pipe, 700, tmp_path / "q.parquet", chunk_size=300, random_state=1)))
    assert back.dtypes.to_dict() == pipe.sample(5, random_state=0).dtypes.to_dict()


@pytest.mark.parametrize("ids", [np.arange(1, 301), [f"P{i:04d}" for i in range(300)]])
def test_identifiers_stay_unique_across_chunks(tmp_path, ids):
    # every sample call numbers an id column from 1: chunk after chunk repeated them
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"pid": ids, "x": rng.normal(size=300), "g": rng.choice(["a", "b"], 300)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth = nhssynth.AIMSynthesizer(epsilon=3.0, random_state=0).fit(df)
    assert synth.metadata_["pid"].kind == "id"
    out = pd.read_parquet(sample_to_parquet(synth, 1_000, tmp_path / "s.parquet",
                                            chunk_size=300, random_state=0))
    assert out["pid"].is_unique and len(out) == 1_000
    assert out["pid"].iloc[0] in (1, "id-000001") and out["pid"].iloc[-1] in (1_000, "id-001000")
