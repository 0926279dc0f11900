import warnings

import numpy as np
import pandas as pd
import pytest

from nhssynth import Metadata, MetadataError, NonPrivateOperationWarning, PrivacyBudgetError
from nhssynth.datasets import load_example
from nhssynth import DPVAESynthesizer, TableEncoder, make_synthesis_pipeline
from sklearn.utils._param_validation import InvalidParameterError

TINY = dict(max_epochs=3, batch_size=64, hidden_dims=(32,), latent_dim=4, random_state=0)


COLS = ["age", "sex", "death", "edu", "income", "charges", "dzgroup", "sno", "scoma"]


@pytest.fixture(scope="module")
def support_small():
    return load_example()[COLS].iloc[:800].reset_index(drop=True)


@pytest.fixture(scope="module")
def support_metadata():
    """The shipped metadata: categories declared public (from the data dictionary)."""
    return load_example(return_metadata=True)[1].select(COLS)


def test_fit_sample_schema_and_privacy(support_small, support_metadata):
    synth = DPVAESynthesizer(epsilon=3.0, metadata=support_metadata, **TINY).fit(support_small)
    fake = synth.sample(300, random_state=1)
    assert list(fake.columns) == list(support_small.columns)
    assert (fake.dtypes == support_small.dtypes).all()
    assert set(fake["dzgroup"].dropna()) <= set(support_small["dzgroup"].cat.categories)
    assert fake["income"].isna().any() and fake["edu"].isna().any()  # missingness is generated
    assert fake["sno"].is_unique  # ids are fresh, not copied
    assert 0 < synth.epsilon_ <= 3.0
    assert synth.delta_ == pytest.approx(min(1e-5, 0.1 / len(support_small)))
    assert synth.delta_ < 1 / len(support_small)
    assert synth.n_epochs_ == 3 and len(synth.history_) == 3
    eps_curve = [h["epsilon"] for h in synth.history_]
    assert eps_curve == sorted(eps_curve) and eps_curve[-1] <= 3.0
    assert synth.noise_multiplier_ > 0.3
    report = synth.privacy_report()
    assert report.private and report.epsilon == synth.epsilon_
    assert report.covers_preprocessing and not report.non_private_statistics
    stages = [s.stage for s in report.spends]
    # numeric bounds are not declared -> DP domains and histograms; then the numeric columns'
    # rank correlation, pairs, training
    assert stages == ["domain release: domains", "domain release: histograms",
                      "calibration: rank correlations", "calibration: two-way marginals",
                      "training"]
    assert sum(s.epsilon for s in report.spends) > synth.epsilon_  # composition is tighter
    assert report.accountant == "rdp" and any("Renyi" in n for n in report.notes)
    assert report.details["measured_pairs"]


def test_ndarray_in_ndarray_out():
    X = np.random.default_rng(0).normal(size=(3000, 3))
    synth = DPVAESynthesizer(epsilon=5.0, **TINY).fit(X)  # bounds estimated with DP
    out = synth.sample(10, random_state=0)
    assert isinstance(out, np.ndarray) and out.shape == (10, 3)


def test_sampling_uses_the_prior_not_training_latents(support_small, support_metadata):
    synth = DPVAESynthesizer(epsilon=3.0, metadata=support_metadata, **TINY).fit(support_small)

    def forbidden(*args, **kwargs):
        raise AssertionError("sample() must not run the encoder on anything")

    synth.network_.encode = forbidden
    assert len(synth.sample(50, random_state=0)) == 50


def test_missingness_and_categories_are_sampled_not_thresholded():
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({"x": rng.normal(size=n),
                       "rare": pd.Categorical(rng.choice(["a", "b"], n, p=[0.85, 0.15])),
                       "flag": rng.uniform(size=n) < 0.2})
    df.loc[rng.uniform(size=n) < 0.3, "x"] = np.nan
    synth = DPVAESynthesizer(epsilon=None, allow_non_private=True, max_epochs=15, batch_size=128,
                             random_state=0).fit(df)
    fake = synth.sample(4000, random_state=0)
    # argmax/thresholding would give 0% missing, 0% "b" and 0% True
    assert 0.2 < fake["x"].isna().mean() < 0.4
    assert 0.07 < (fake["rare"] == "b").mean() < 0.25
    assert 0.1 < fake["flag"].mean() < 0.3


def test_non_private_training_warns_unless_acknowledged(support_small):
    with pytest.warns(NonPrivateOperationWarning, match="WITHOUT differential privacy"):
        synth = DPVAESynthesizer(epsilon=None, **TINY).fit(support_small)
    assert synth.epsilon_ == np.inf and not synth.privacy_report().private
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonPrivateOperationWarning)
        DPVAESynthesizer(epsilon=None, allow_non_private=True, **TINY).fit(support_small)


@pytest.mark.parametrize("params, error, match", [
    (dict(epsilon=0.0), InvalidParameterError, "epsilon"),
    (dict(epsilon=-1.0), InvalidParameterError, "epsilon"),
    (dict(delta=1.5), InvalidParameterError, "delta"),
    (dict(delta=0.01), PrivacyBudgetError, "not below 1/n_rows"),
    (dict(batch_size=5000), ValueError, r"batch_size=5000 is larger than the data \(800 rows\)"),
    (dict(accountant="gdp"), InvalidParameterError, "accountant"),
    (dict(max_epochs=0), InvalidParameterError, "max_epochs"),
    (dict(hidden_dims=(0,)), ValueError, "hidden_dims"),
    (dict(pair_fraction=1.7), InvalidParameterError, "pair_fraction"),
    (dict(domain_fraction=0.0), InvalidParameterError, "domain_fraction"),
])
def test_bad_parameters(support_small, support_metadata, params, error, match):
    with pytest.raises(error, match=match):
        DPVAESynthesizer(**{**TINY, "metadata": support_metadata, **params}).fit(support_small)


def test_too_small_dataset_for_epsilon():
    # declared categories: the domain release is cheap, DP-SGD is what cannot be afforded
    cats = pd.DataFrame({"c": np.array(["a", "b"] * 20, dtype=object)})
    md = Metadata.from_yaml("columns:\n  c: {kind: categorical, dtype: object, categories: [a, b], "
                            "domain: declared}\n")
    with pytest.raises(PrivacyBudgetError, match=r"(?i)too small for DP-SGD on 40 rows.*raise epsilon"):
        DPVAESynthesizer(epsilon=0.01, max_epochs=200, batch_size=39, hidden_dims=(4,),
                         delta=1e-4, metadata=md).fit(cats)


def test_noise_multiplier_that_overspends_is_refused(support_small, support_metadata):
    with pytest.raises(PrivacyBudgetError, match="raise noise_multiplier"):
        DPVAESynthesizer(epsilon=3.0, noise_multiplier=0.4, metadata=support_metadata,
                         **TINY).fit(support_small)


def test_nan_in_column_declared_without_missing(support_small):
    md = load_example(return_metadata=True)[1].select(COLS).update("charges", nullable=False)
    with pytest.raises(MetadataError, match="column 'charges' has .* missing value"):
        DPVAESynthesizer(epsilon=3.0, metadata=md, **TINY).fit(support_small)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_sample_argument_validation(support_small, support_metadata, bad, error):
    synth = DPVAESynthesizer(epsilon=3.0, metadata=support_metadata, **TINY).fit(support_small)
    with pytest.raises(error, match="n_samples must be a positive integer"):
        synth.sample(bad)


def test_score_samples_prefers_training_like_rows(support_small):
    synth = DPVAESynthesizer(epsilon=None, allow_non_private=True, max_epochs=10, batch_size=64,
                             random_state=0).fit(support_small)
    head = support_small.iloc[:200]
    atypical = head.assign(charges=head["charges"].max() * 0.999,
                           age=head["age"].min() + 0.001)  # extreme tails of two columns at once
    typical, odd = synth.score_samples(head), synth.score_samples(atypical)
    assert typical.shape == (200,) and np.isfinite(typical).all()
    assert np.median(typical) > np.median(odd)
    assert (typical > odd).mean() > 0.7


def test_verbose_progress_bar_and_logging(support_small, support_metadata, capsys, caplog):
    import logging
    with caplog.at_level(logging.INFO, logger="nhssynth"):
        DPVAESynthesizer(epsilon=3.0, metadata=support_metadata, verbose=True,
                         **TINY).fit(support_small)
    err = capsys.readouterr().err
    assert "DPVAE" in err and "3/3" in err and "eps=" in err  # tqdm bar over epochs with epsilon
    assert any("fitted DPVAESynthesizer" in r.message for r in caplog.records)


def _cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a, b).to_numpy().astype(float)
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    return float(np.sqrt(((table - expected) ** 2 / expected).sum() / table.sum()
                         / (min(table.shape) - 1)))


def _linked_table(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    """Two columns a DP-SGD network at epsilon 1 does not learn to link, one it does not need."""
    rng = np.random.default_rng(seed)
    a = rng.choice(["p", "q", "r", "s"], n)
    b = np.where(rng.random(n) < 0.9, pd.Series(a).map({"p": "W", "q": "X", "r": "Y", "s": "Z"}), "X")
    return pd.DataFrame({"a": a, "b": b, "x": np.round(rng.normal(50, 10, n), 1)})


def test_calibration_measures_the_pair_the_network_missed_and_puts_it_back():
    df = _linked_table()
    plain = DPVAESynthesizer(epsilon=1.0, calibrate=False, random_state=0, max_epochs=5).fit(df)
    calibrated = DPVAESynthesizer(epsilon=1.0, random_state=0, max_epochs=5).fit(df)
    real = _cramers_v(df["a"], df["b"])
    before = _cramers_v(*(plain.sample(3_000, random_state=0)[c] for c in "ab"))
    after = _cramers_v(*(calibrated.sample(3_000, random_state=0)[c] for c in "ab"))
    assert ("a", "b") in calibrated.calibrator_.pairs or ("b", "a") in calibrated.calibrator_.pairs
    assert after > before + 0.2 and abs(after - real) < 0.15
    assert calibrated.epsilon_ <= 1.0 and plain.epsilon_ <= 1.0
    assert plain.privacy_report().accountant == "prv"  # no exponential mechanism without pairs


def test_calibrated_marginals_follow_the_release_in_every_chunk(support_small, support_metadata):
    import nhssynth.synthesizers.vae.estimator as vae_module
    synth = DPVAESynthesizer(epsilon=3.0, metadata=support_metadata,
                             **{**TINY, "max_epochs": 20}).fit(support_small)
    saved = vae_module._CHUNK_CELLS
    vae_module._CHUNK_CELLS = 1_000 * synth.oversample * synth.network_.n_features  # 1,000 rows
    try:
        fake = synth.sample(3_000, random_state=0)
    finally:
        vae_module._CHUNK_CELLS = saved
    cal = synth.calibrator_
    bins = cal.bins
    for j, b in enumerate(bins.columns):  # every one-way target, chunk by chunk
        target = cal.targets[cal.margins.index((j,))]
        for start in (0, 1_000, 2_000):
            got = np.bincount(bins.encode(fake.iloc[start:start + 1_000])[:, j], minlength=b.size)
            assert 0.5 * np.abs(got / 1_000 - target).sum() < 0.12, b.name


def test_pipeline_and_dataframe_paths_run_the_same_calibration(support_small, support_metadata):
    """The encoded-pipeline path releases the same domain, spends the same budget and calibrates
    the same way as the DataFrame path."""
    frame_fit = DPVAESynthesizer(epsilon=3.0, metadata=support_metadata, **TINY).fit(support_small)
    eps_domain = frame_fit.encoder_.epsilon
    pipe = make_synthesis_pipeline(
        TableEncoder(metadata=support_metadata, epsilon=eps_domain, delta=frame_fit.delta_,
                     gmm_components=5, random_state=frame_fit.encoder_.random_state),
        DPVAESynthesizer(epsilon=3.0, **TINY)).fit(support_small)
    pipe_fit = pipe.steps[-1][1]
    a, b = frame_fit.privacy_report(), pipe_fit.privacy_report()
    assert [s.stage for s in a.spends] == [s.stage for s in b.spends]
    assert a.epsilon == pytest.approx(b.epsilon, rel=1e-6) and b.covers_preprocessing
    assert pipe_fit.calibrator_ is not None and pipe_fit.calibrator_.pairs == frame_fit.calibrator_.pairs
    out = pipe.sample(500, random_state=0)
    assert list(out.columns) == list(support_small.columns)


def test_a_non_private_encoder_in_a_pipeline_is_reported():
    df = _linked_table(800)
    pipe = make_synthesis_pipeline(TableEncoder(), DPVAESynthesizer(epsilon=3.0, **TINY))
    with pytest.warns(NonPrivateOperationWarning):
        pipe.fit(df)
    report = pipe.privacy_report()
    assert not report.covers_preprocessing and "a: category set" in report.non_private_statistics
    assert "without DP" in report.statement


def test_decode_bias_matches_one_hot_binary_and_missing_shares_to_their_targets():
    # an untrained network draws its categories at whatever its random output biases say;
    # the fitted offsets make every group's frequencies the targets' (a column's value
    # features among the rows drawn as observed), whatever the network
    import torch
    from nhssynth.base import OutputSpan
    from nhssynth.synthesizers.vae.networks import VAENetwork
    from nhssynth.synthesizers.vae.sampling import (decode_prior, fit_decode_bias,
                                                    one_way_feature_means)
    spans = [OutputSpan("a", "softmax", 0, 3, "category"), OutputSpan("x", "continuous", 3, 1),
             OutputSpan("b", "binary", 4, 1, "missing"), OutputSpan("b", "softmax", 5, 2, "category"),
             OutputSpan("c", "binary", 7, 1, "value")]
    torch.manual_seed(0)
    net = VAENetwork(8, 1, 2, (16,))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))  # strongly skewed outputs
    # targets from an encoded table: b missing in 30 % of rows (its value one-hot then holds
    # a fill category, which must not count), 90/10 among the observed
    rng = np.random.default_rng(0)
    n = 50_000
    Z = np.zeros((n, 8), dtype=np.float32)
    Z[np.arange(n), rng.choice(3, n, p=[0.7, 0.2, 0.1])] = 1
    miss = rng.random(n) < 0.3
    Z[:, 4] = miss
    Z[np.arange(n), 5 + np.where(miss, 0, rng.choice(2, n, p=[0.9, 0.1]))] = 1
    Z[:, 7] = rng.random(n) < 0.05
    targets = one_way_feature_means(Z, spans)
    assert targets[5] == pytest.approx(0.9, abs=0.01)  # not the 0.93 of all rows
    before = decode_prior(net, spans, 100_000, np.random.default_rng(1))
    bias = fit_decode_bias(net, spans, targets, 20_000, np.random.default_rng(2))
    assert bias[3] == 0.0  # continuous features untouched
    draws = decode_prior(net, spans, 100_000, np.random.default_rng(3), bias=bias)
    got = one_way_feature_means(draws, spans)
    for j in (0, 1, 2, 4, 5, 6, 7):
        assert got[j] == pytest.approx(targets[j], abs=0.015), (j, got[j], targets[j])
    # the network alone was far from them (the test would pass without the offsets otherwise)
    assert np.abs(one_way_feature_means(before, spans) - targets)[[0, 1, 2, 4, 5, 7]].max() > 0.1


def test_identifiers_are_numbered_one_to_n_after_calibrated_selection():
    # the calibrated DP-VAE keeps n of oversample * n candidates: their ids ran up to the
    # pool's size (lifelines.mice's row number sampled up to 4,303 for 144 rows)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"row": np.arange(1, 401), "x": rng.normal(size=400),
                       "g": rng.choice(["a", "b"], 400)})
    md = Metadata.from_dataframe(df)
    assert md["row"].kind == "id"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = DPVAESynthesizer(epsilon=3.0, max_epochs=2, random_state=0).fit(df).sample(
            150, random_state=0)
    assert s["row"].tolist() == list(range(1, 151))
