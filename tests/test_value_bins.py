"""Value bins of mixture-encoded columns (the DP marginals of numeric columns) and bounded
raking: keys follow the encoder's own decoding, cuts come from a released histogram only, and
raking many columns cannot hand all the weight to a few rows."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nhssynth.base import OutputSpan
from nhssynth.calibration.marginals import ValueBins, column_bins, value_cuts
from nhssynth.calibration.raking import cap_weights, rake_factors, rake_select
from nhssynth.synthesizers.vae.init import decoder_bias
from nhssynth.transformers import GMMEncoder


@pytest.fixture(scope="module")
def spiky():
    """Integer column: 65% zeros, the rest spread over 1-100 (like a coma score)."""
    rng = np.random.default_rng(0)
    x = np.where(rng.uniform(size=4000) < 0.65, 0, rng.integers(1, 101, 4000)).astype(float)
    enc = GMMEncoder(5, random_state=0, bounds=[(0.0, 128.0)]).fit(x.reshape(-1, 1))
    return x, enc


def _bins(enc, cuts, decimals=0):
    return ValueBins(means=np.asarray(enc.means_[0]), stds=np.asarray(enc.stds_[0]),
                     weights=np.asarray(enc.weights_[0]), lo=float(enc.bounds_[0, 0]),
                     hi=float(enc.bounds_[0, 1]), cuts=np.asarray(cuts, dtype=float), decimals=decimals)


def test_value_keys_are_the_bins_of_the_decoded_values(spiky):
    x, enc = spiky
    vb = _bins(enc, [0.5, 10.5, 50.5])
    Z = enc.transform(x.reshape(-1, 1))
    mode, scalar = np.argmax(Z[:, 1:], axis=1), Z[:, 0]
    np.testing.assert_allclose(vb.values(mode, scalar), x)  # exact round trip
    np.testing.assert_array_equal(vb.keys(mode, scalar), np.searchsorted([0.5, 10.5, 50.5], x))
    # any encoded row, not only encodings of data: the key is that of the decoded value
    rng = np.random.default_rng(1)
    fake = np.zeros((500, Z.shape[1]))
    fake[:, 0] = rng.uniform(-1.5, 1.5, 500)
    fake[np.arange(500), 1 + rng.integers(0, Z.shape[1] - 1, 500)] = 1
    decoded = enc.inverse_transform(fake)[:, 0].round()
    np.testing.assert_array_equal(vb.keys(np.argmax(fake[:, 1:], 1), fake[:, 0]),
                                  np.searchsorted([0.5, 10.5, 50.5], decoded, side="right"))


def test_mode_probabilities_send_a_spike_bin_to_the_spike_mode(spiky):
    # bin [0, 0.5) holds the zeros; judged at its centre (0.25) a near-zero-width mode at 0
    # looks impossible and the mass would go to a wide mode instead
    x, enc = spiky
    vb = _bins(enc, [0.5, 50.5])
    p = np.array([0.65, 0.2, 0.15])
    modes = vb.mode_probabilities(p)
    assert modes.sum() == pytest.approx(1.0)
    spike = int(np.argmin(np.abs(vb.means) + vb.stds))
    assert modes[spike] == pytest.approx(0.65, abs=0.02)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1000), min_size=2, max_size=40), st.integers(2, 20))
def test_value_cuts_are_histogram_edges_in_order(weights, n_bins):
    centres = np.arange(len(weights), dtype=float)
    cuts = value_cuts(centres, np.array(weights), n_bins)
    assert np.all(np.diff(cuts) > 0)
    assert np.all(np.isin(cuts, centres[:-1] + 0.5))  # only at the histogram's own edges
    if sum(weights) > 0:
        assert len(cuts) <= 2 * n_bins + 1


def test_value_cuts_split_mass_evenly_and_fence_off_the_empty_range():
    centres = np.arange(100, dtype=float)
    w = np.zeros(100)
    w[20:80] = 1.0
    cuts = value_cuts(centres, w, 4)
    np.testing.assert_allclose(cuts, [19.5, 34.5, 49.5, 64.5, 79.5])
    spike = w.copy()
    spike[30] = 200.0  # one value with most of the mass gets a bin of its own
    assert {29.5, 30.5} <= set(value_cuts(centres, spike, 8))
    assert len(value_cuts(centres, np.zeros(100), 4)) == 0


def test_decoder_bias_of_a_value_binned_column_gives_its_mode_shares(spiky):
    x, enc = spiky
    vb = _bins(enc, [0.5, 50.5])
    k = enc.n_modes_[0]
    spans = [OutputSpan("s", "continuous", 0, 1), OutputSpan("s", "softmax", 1, int(k), role="mode")]
    p = np.array([0.65, 0.2, 0.15])
    bias = decoder_bias(spans, [p], 1 + int(k), {"s": vb})
    soft = np.exp(bias[1:]) / np.exp(bias[1:]).sum()
    np.testing.assert_allclose(soft, vb.mode_probabilities(p), atol=2e-3)


def test_cap_weights_ignores_a_few_runaway_weights():
    w = np.ones(1000)
    w[:3] = 1e30
    capped = cap_weights(w, 20.0)
    assert capped[:3].max() == pytest.approx(20.0)  # scale from the bulk, not the runaways
    np.testing.assert_allclose(capped[3:], 1.0)
    np.testing.assert_allclose(cap_weights(np.full(10, np.inf)), 1.0)


def test_bounded_raking_selects_closer_to_the_targets_than_plain_ipf():
    # ten binary columns produced at 10% where the targets say 30%: plain IPF fits factors to
    # weights that the selection then caps, so the selected rows miss the targets; bounded
    # raking fits the factors to the capped weights themselves
    rng = np.random.default_rng(4)
    n, k = 20_000, 10
    spans = [OutputSpan(f"c{j}", "binary", j, 1) for j in range(k)]
    Z = (rng.uniform(size=(n, k)) < 0.1).astype(np.float32)
    targets = [np.array([0.7, 0.3])] * k

    def error(max_weight):
        factors = rake_factors(Z, spans, targets, max_weight=max_weight)
        keep = rake_select(Z, spans, factors, 1_000, np.random.default_rng(0))
        assert len(np.unique(keep)) == 1_000
        keys, _, _ = column_bins(Z[keep], spans)
        return float(np.abs(keys.mean(axis=0) - 0.3).mean())

    bounded, plain = error(20.0), error(np.inf)
    assert bounded < 0.025 and bounded < 0.6 * plain


def test_cap_weights_of_all_zero_weights_is_uniform():
    np.testing.assert_allclose(cap_weights(np.zeros(5)), 1.0)
