"""Property tests (hypothesis): exact round trip and valid decoding of any model output."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhssynth import TableEncoder

from .test_encoding import assert_frames_match

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _with_missing(draw, values, p_strategy=st.booleans()):
    """Replace some entries with None, keeping at least one observed value."""
    mask = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    mask[draw(st.integers(0, len(values) - 1))] = False
    return [None if m else v for v, m in zip(values, mask)]


@st.composite
def mixed_frames(draw):
    n = draw(st.integers(12, 40))
    lists = lambda s: st.lists(s, min_size=n, max_size=n)  # noqa: E731
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    f = _with_missing(draw, draw(lists(finite)))
    small = _with_missing(draw, draw(lists(st.floats(0, 1, allow_subnormal=False))))
    ints = draw(lists(st.integers(-10 ** 9, 10 ** 9)))
    nint = _with_missing(draw, draw(lists(st.integers(-1000, 1000))))
    cats = _with_missing(draw, draw(lists(st.sampled_from(["a", "b", "c"]))))
    strs = _with_missing(draw, draw(lists(st.sampled_from(["x", "yy", "zzz"]))))
    secs = _with_missing(draw, draw(lists(st.integers(0, 10 ** 9))))
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    tz = draw(st.sampled_from([None, "UTC", "Europe/London", "America/New_York"]))
    t = pd.Series(pd.to_datetime([None if s is None else s * 10 ** 9 for s in secs]))
    t = t.dt.tz_localize("UTC").dt.tz_convert(tz) if tz else t
    t = t.astype(f"datetime64[{unit}, {tz}]" if tz else f"datetime64[{unit}]")
    df = pd.DataFrame({
        "f": pd.Series(f, dtype="float64"),
        "p": pd.Series(small, dtype="float64"),
        "i": np.asarray(ints, dtype=np.int64),
        "n": pd.array(nint, dtype="Int64"),
        "b": np.asarray(draw(lists(st.booleans()))),
        "c": pd.Categorical(cats, categories=["a", "b", "c", "d"], ordered=draw(st.booleans())),
        "s": pd.Series([np.nan if v is None else v for v in strs], dtype=object),
        "t": t,
        "k": np.full(n, draw(finite)),
    })
    order = draw(st.permutations(list(df.columns)))
    return df[order]


def _fit(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TableEncoder(random_state=0, **kw).fit(df)


@SETTINGS
@given(mixed_frames())
def test_round_trip_is_exact(df):
    enc = _fit(df, dtype="float64")
    Z = enc.transform(df)
    assert Z.shape == (len(df), enc.n_features_out_) and np.isfinite(Z).all()
    assert_frames_match(df, enc.inverse_transform(Z), enc.metadata_)


@SETTINGS
@given(mixed_frames(), st.integers(0, 2 ** 31 - 1), st.floats(0.1, 10))
def test_any_model_output_decodes_to_a_valid_frame(df, seed, spread):
    enc = _fit(df)
    rng = np.random.default_rng(seed)
    Z = (rng.standard_normal((25, enc.n_features_out_)) * spread).astype(np.float32)
    out = enc.inverse_transform(Z)
    assert list(out.columns) == list(df.columns)
    assert (out.dtypes == df.dtypes).all()
    for c in enc.metadata_:
        s, orig = out[c.name], df[c.name]
        if not orig.isna().any():
            assert not s.isna().any(), c.name
        obs = s.dropna()
        if c.kind == "datetime" and len(obs):
            assert obs.min() >= orig.min() and obs.max() <= orig.max(), c.name
        if c.kind in ("continuous", "integer") and len(obs):
            # bounds hold up to the 1e-9 of rounding to decimals that the data satisfied
            tol = 1e-9 * float(orig.abs().max())
            assert obs.min() >= orig.min() - tol and obs.max() <= orig.max() + tol, c.name
        if c.kind == "integer":
            v = obs.to_numpy(np.float64)
            assert np.all(v == np.round(v))
        if c.kind in ("categorical", "boolean"):
            assert set(obs.tolist()) <= set(orig.dropna().tolist()) | set(c.categories or []), c.name
