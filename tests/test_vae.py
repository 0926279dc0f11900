import warnings

import numpy as np
import pandas as pd
import pytest

from nhssynth import Metadata, MetadataError, NonPrivateOperationWarning, PrivacyBudgetError
from nhssynth.datasets import load_example
from nhssynth import DPVAESynthesizer

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
    assert report["private"] and report["epsilon"] == synth.epsilon_
    assert report["covers_preprocessing"] and not report["non_private_statistics"]
    stages = [s["stage"] for s in report["spends"]]
    # numeric bounds are not declared -> DP domains and histograms; then marginals, training
    assert stages == ["preprocessing: domains", "preprocessing: histograms", "marginals", "pair marginals",
                      "training"]
    assert sum(s["epsilon"] for s in report["spends"]) > synth.epsilon_  # composition is tighter


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
    assert synth.epsilon_ == np.inf and not synth.privacy_report()["private"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonPrivateOperationWarning)
        DPVAESynthesizer(epsilon=None, allow_non_private=True, **TINY).fit(support_small)


@pytest.mark.parametrize("params, error, match", [
    (dict(epsilon=0.0), PrivacyBudgetError, "epsilon must be a positive"),
    (dict(epsilon=-1.0), PrivacyBudgetError, "epsilon must be a positive"),
    (dict(delta=1.5), PrivacyBudgetError, r"delta must be in \(0, 1\)"),
    (dict(delta=0.01), PrivacyBudgetError, "not below 1/n_rows"),
    (dict(batch_size=5000), ValueError, r"batch_size=5000 is larger than the data \(800 rows\)"),
    (dict(accountant="gdp"), ValueError, "under-report"),
    (dict(max_epochs=0), ValueError, "max_epochs must be a positive integer"),
    (dict(hidden_dims=(0,)), ValueError, "hidden_dims"),
    (dict(pair_fraction=0.7), ValueError, r"pair_fraction must be in \[0, 0.5\)"),
])
def test_bad_parameters(support_small, support_metadata, params, error, match):
    with pytest.raises(error, match=match):
        DPVAESynthesizer(**{**TINY, "metadata": support_metadata, **params}).fit(support_small)


def test_too_small_dataset_for_epsilon():
    df = pd.DataFrame({"x": np.arange(40, dtype=float)})
    # declared categories: nothing to preprocess, so training is what cannot be afforded
    cats = pd.DataFrame({"c": np.array(["a", "b"] * 20, dtype=object)})
    md = Metadata.from_yaml("columns:\n  c: {kind: categorical, dtype: object, categories: [a, b], "
                            "domain: declared}\n")
    with pytest.raises(PrivacyBudgetError, match=r"(?i)too small for epsilon=0.01.*raise epsilon"):
        DPVAESynthesizer(epsilon=0.01, max_epochs=200, batch_size=39, hidden_dims=(4,),
                         delta=1e-4, metadata=md).fit(cats)
    # without declared bounds the (DP) preprocessing is what cannot be afforded
    with pytest.raises(PrivacyBudgetError, match=r"preprocessing.*declare"):
        DPVAESynthesizer(epsilon=0.01, max_epochs=2, batch_size=20, delta=1e-4).fit(df)


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



def test_large_samples_are_raked_in_chunks_that_each_match_the_marginals(
        support_small, support_metadata, monkeypatch):
    import nhssynth.synthesizers.vae.estimator as vae_module
    from nhssynth.calibration.marginals import column_bins

    synth = DPVAESynthesizer(epsilon=3.0, metadata=support_metadata, **TINY).fit(support_small)
    one_chunk = synth.sample_encoded(3_000, random_state=0)
    # force 1,000-row chunks (the smallest chunk size)
    monkeypatch.setattr(vae_module, "_RAKE_CELLS", 1)
    chunked = synth.sample_encoded(3_000, random_state=0)
    assert chunked.shape == one_chunk.shape
    assert not np.array_equal(chunked, one_chunk)  # a different draw ...
    np.testing.assert_array_equal(chunked, synth.sample_encoded(3_000, random_state=0))  # seeded

    def tv_per_column(Z):
        keys, n_bins, _ = column_bins(Z, synth.output_spans_, synth.value_bins_)
        return np.array([0.5 * np.abs(np.bincount(keys[:, j], minlength=n_bins[j]) / len(Z) - t).sum()
                         for j, t in enumerate(synth.marginals_)])

    whole = tv_per_column(one_chunk)
    unraked = tv_per_column(synth._decode_prior(3_000, np.random.default_rng(0)))
    assert whole.mean() < 0.5 * unraked.mean()  # raking moves the draw to the marginals
    for start in (0, 1_000, 2_000):  # ... and every 1,000-row chunk is raked on its own
        part = tv_per_column(chunked[start:start + 1_000])
        assert np.all(part < whole + 0.06)  # 0.06: sampling noise of 1,000 rows


def test_non_private_fit_takes_exact_marginals_and_rakes_to_them(support_small, support_metadata):
    from nhssynth.calibration.marginals import column_bins

    synth = DPVAESynthesizer(epsilon=None, allow_non_private=True, **TINY).fit(support_small)
    Z = synth.encoder_.transform(support_small)
    keys, n_bins, _ = column_bins(Z, synth.output_spans_, synth.value_bins_)
    for j, got in enumerate(synth.marginals_):  # exact: the real column histograms
        np.testing.assert_allclose(got, np.bincount(keys[:, j], minlength=n_bins[j]) / len(Z))
    assert synth.rake_factors_ is not None
    # the same value bins, quantile maps and two-way marginals as a private fit, exact
    assert synth.value_bins_ and set(synth.quantile_maps_) == set(synth.value_bins_)
    for pair in synth.pair_marginals_:
        cells = pair.keys(keys)
        np.testing.assert_allclose(pair.target.ravel(),
                                   np.bincount(cells, minlength=pair.target.size) / len(Z), atol=1e-6)
    assert DPVAESynthesizer(epsilon=None, allow_non_private=True, marginal_fraction=0,
                            **TINY).fit(support_small).marginals_ is None


def test_decoder_starts_at_the_released_marginals_and_one_mode_sd(support_small, support_metadata):
    import torch

    from nhssynth.synthesizers.vae.losses import squash_log_scale
    from nhssynth.calibration.marginals import columns_of

    # a learning rate too small to move the weights shows the initial decoder
    synth = DPVAESynthesizer(epsilon=3.0, metadata=support_metadata, learning_rate=1e-12,
                             **TINY).fit(support_small)
    bias = synth.network_.decoder.layers[-1].bias.detach()
    width = synth.network_.n_features
    scale = torch.exp(squash_log_scale(bias[width:]))
    np.testing.assert_allclose(scale.numpy(), 0.25, rtol=1e-4)
    assert synth.value_bins_  # numeric columns without declared bounds get value bins
    for col, p in zip(columns_of(synth.output_spans_), synth.marginals_):
        if col.name in synth.value_bins_:
            n_value = len(p) - int(col.missing is not None)
            observed = p[:n_value] / p[:n_value].sum()
            want = synth.value_bins_[col.name].mode_probabilities(observed)
            logits = bias[col.soft.slice].double()
            np.testing.assert_allclose(torch.softmax(logits, 0).numpy(), want, atol=2e-3)
