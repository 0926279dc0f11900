"""DP preprocessing: category discovery with a threshold, coarse bounds, histograms; and that a
rare value never reaches a fitted model, its samples or its saved files."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nhssynth import Metadata, NonPrivateOperationWarning
from nhssynth import DPVAESynthesizer
from nhssynth.privacy.budget import PrivacyBudget
from nhssynth.privacy.mechanisms import dp_preprocess, estimate_domains, public_metadata

RARE = "ZZ_RARE_PERSON"
TINY = dict(max_epochs=2, batch_size=500, hidden_dims=(16,), latent_dim=4, random_state=0)


def _z(epsilon=1.0, delta=1e-5, delta_threshold=1e-6):
    """Per-stage noise multiplier that dp_preprocess would use at this budget."""
    return PrivacyBudget(epsilon, delta).mechanism_noise_multiplier(0.1, 2, delta_threshold)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 5000
    group = rng.choice(["alpha", "beta", "gamma"], n, p=[0.5, 0.3, 0.2]).astype(object)
    group[:3] = RARE  # one rare value held by 3 people
    return pd.DataFrame({"normal": rng.normal(50.0, 10.0, n),
                         "lognormal": rng.lognormal(3.0, 1.0, n),
                         "negative": -rng.gamma(2.0, 500.0, n),
                         "group": group})


# --------------------------------------------------------------------------------------------
# estimate_domains
# --------------------------------------------------------------------------------------------
def test_coarse_bounds_contain_the_bulk_of_the_data(frame):
    # epsilon=3 on 5,000 rows (epsilon=1 needs ~20,000 rows for the lognormal's tails: a
    # power-of-two bin holding ~200 rows does not clear noise of std ~100; docs/privacy.md)
    md = Metadata.from_dataframe(frame)
    est = estimate_domains(frame, md, noise_multiplier=_z(epsilon=3.0), delta_threshold=1e-6,
                           rng=np.random.default_rng(0))
    for name in ("normal", "lognormal", "negative"):
        lo, hi = est.domains[name]["bounds"]
        values = frame[name].to_numpy()
        inside = ((values >= lo) & (values <= hi)).mean()
        assert inside >= 0.95, (name, lo, hi, inside)
        # coarse, but not absurd: within a factor of 4 of the data's own range
        span = values.max() - values.min()
        assert hi - lo <= 4 * (span + abs(values).max()), (name, lo, hi)
        w = np.asarray(est.domains[name]["gmm_weights"])
        assert w.sum() > 0 and (w >= 0).all()
    assert est.domains["negative"]["bounds"][1] <= 0  # sign of the bins is respected


def test_frequent_categories_released_rare_ones_never(frame):
    md = Metadata.from_dataframe(frame)
    z = _z()
    released = set()
    for seed in range(20):
        est = estimate_domains(frame, md, noise_multiplier=z, delta_threshold=1e-6,
                               rng=np.random.default_rng(seed))
        cats = est.domains["group"]["categories"]
        assert cats == ["alpha", "beta", "gamma"]  # sorted (public order), all frequent ones
        released |= set(cats)
        tau = est.spends[0]["category_threshold"]
        assert 3 < tau < 1000  # 3 rows is far below the threshold; 1000 rows far above
    assert RARE not in released
    assert est.delta_threshold == pytest.approx(1e-6)
    assert est.history == ((z, 1.0, 1),) * 3  # domains, histograms, zoomed histograms


def test_threshold_follows_the_noise():
    """A category is released once its count clears tau; tau grows with the noise."""
    n = 4000
    counts = {"big": 3000, "mid": 900, "small": 100}
    df = pd.DataFrame({"c": np.repeat(list(counts), list(counts.values())).astype(object)})
    assert len(df) == n
    md = Metadata.from_dataframe(df)
    low_noise = estimate_domains(df, md, noise_multiplier=_z(epsilon=8.0), delta_threshold=1e-6,
                                 rng=np.random.default_rng(0))
    high_noise = estimate_domains(df, md, noise_multiplier=_z(epsilon=0.3), delta_threshold=1e-6,
                                  rng=np.random.default_rng(0))
    assert low_noise.domains["c"]["categories"] == ["big", "mid", "small"]
    assert high_noise.spends[0]["category_threshold"] > low_noise.spends[0]["category_threshold"]
    assert "small" not in high_noise.domains["c"]["categories"]
    assert "big" in high_noise.domains["c"]["categories"]


def test_estimates_are_reproducible_with_a_seeded_rng(frame):
    md = Metadata.from_dataframe(frame)

    def run(seed):
        return estimate_domains(frame, md, noise_multiplier=_z(), delta_threshold=1e-6,
                                rng=np.random.default_rng(seed)).domains

    a, b, c = run(3), run(3), run(4)
    for name in ("normal", "lognormal"):
        assert a[name]["bounds"] == b[name]["bounds"]
        np.testing.assert_array_equal(a[name]["gmm_weights"], b[name]["gmm_weights"])
    assert not np.array_equal(a["normal"]["gmm_weights"], c["normal"]["gmm_weights"])  # it is noisy


def test_dp_preprocess_charges_the_budget_only_for_undeclared_statistics(frame):
    md = Metadata.from_dataframe(frame)
    budget = PrivacyBudget(1.0, 1e-5)
    domains, _ = dp_preprocess(frame, md, budget, np.random.default_rng(0))
    assert [s.stage for s in budget.spends] == ["preprocessing: domains", "preprocessing: histograms"]
    assert 0 < budget.spent()[0] <= 0.1 * (1 + 1e-9)
    assert RARE not in domains["group"]["categories"]

    declared = md.update("group", categories=["alpha", "beta", "gamma", RARE], domain="declared")
    for name, (lo, hi) in {"normal": (0, 100), "lognormal": (0, 5000), "negative": (-1e5, 0)}.items():
        declared = declared.update(name, min=lo, max=hi, domain="declared")
    budget = PrivacyBudget(1.0, 1e-5)
    domains, _ = dp_preprocess(frame, declared, budget, np.random.default_rng(0))
    # declared bounds skip the bounds search; the mixtures still need a DP histogram
    assert [s.stage for s in budget.spends] == ["preprocessing: histograms"]
    assert 0 < budget.spent()[0] <= 0.1 * (1 + 1e-9)
    assert domains["normal"]["bounds"] == (0, 100)  # the declared bounds, as they are
    centres = np.asarray(domains["normal"]["gmm_values"])
    weights = np.asarray(domains["normal"]["gmm_weights"])
    assert abs(np.average(centres, weights=weights) - 50.0) < 5  # where the values are
    assert "group" not in domains  # declared categories are used as they are
    # a table with nothing numeric and declared categories spends nothing
    cats = frame[["group"]]
    budget = PrivacyBudget(1.0, 1e-5)
    dp_preprocess(cats, declared.select(["group"]), budget, np.random.default_rng(0))
    assert budget.spends == [] and budget.spent() == (0.0, 0.0)


def test_public_metadata_drops_data_derived_statistics(frame):
    md = Metadata.from_dataframe(frame).update("normal", min=1.0, max=2.0, domain="data")
    assert RARE in md["group"].categories  # inferred metadata lists what the data holds
    pub = public_metadata(md, {"group": {"categories": ["alpha", "beta"]}})
    assert pub["group"].categories == ["alpha", "beta"]
    assert pub["normal"].min is None and pub["normal"].max is None
    kept = md.update("group", domain="declared")
    assert RARE in public_metadata(kept, {})["group"].categories  # declared = public, kept


# --------------------------------------------------------------------------------------------
# end to end: a rare value never reaches the model
# --------------------------------------------------------------------------------------------
def _saved_text(model, path: Path) -> str:
    model.save(path)
    return "\n".join(p.read_bytes().decode("latin-1") for p in sorted(path.iterdir()) if p.is_file())


@pytest.mark.parametrize("as_category", [False, True], ids=["object", "category-dtype"])
def test_rare_category_never_appears_in_model_samples_or_files(frame, tmp_path, as_category):
    df = frame[["normal", "group"]].copy()
    if as_category:  # the pandas dtype itself lists the rare value
        df["group"] = pd.Categorical(df["group"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonPrivateOperationWarning)
        model = DPVAESynthesizer(epsilon=1.0, **TINY).fit(df)
    enc = model.encoder_
    assert RARE not in enc.column_encoders_["group"].categories_[0].tolist()
    assert RARE not in (enc.metadata_["group"].categories or [])
    assert RARE not in repr(vars(model)) + repr(vars(enc))
    fake = model.sample(5000, random_state=0)
    assert set(fake["group"].dropna()) <= {"alpha", "beta", "gamma"}
    if as_category:
        assert RARE not in list(fake["group"].cat.categories)
    assert RARE not in _saved_text(model, tmp_path / "model")
    # a training row holding the rare value still encodes (as "no category"), it does not crash
    assert np.isfinite(model.score_samples(df.iloc[:5])).all()
    # round trip of the saved model still samples
    loaded = DPVAESynthesizer.load(tmp_path / "model")
    assert RARE not in set(loaded.sample(200, random_state=1)["group"].dropna())


def test_declared_rare_category_is_kept(frame, tmp_path):
    df = frame[["normal", "group"]]
    md = Metadata.from_dataframe(df).update("group", categories=["alpha", "beta", "gamma", RARE],
                                            domain="declared")
    model = DPVAESynthesizer(epsilon=1.0, metadata=md, **TINY).fit(df)
    assert RARE in model.encoder_.column_encoders_["group"].categories_[0].tolist()
    assert RARE in _saved_text(model, tmp_path / "model")  # public: may be stored
    stages = [s["stage"] for s in model.privacy_report()["spends"]]
    assert "preprocessing: domains" in stages  # still paid: the numeric column's bounds
    assert "group" not in model.privacy_report()["spends"][0]["columns"]


# --------------------------------------------------------------------------------------------
# non-private preprocessing is an explicit, reported opt-in
# --------------------------------------------------------------------------------------------
def test_non_private_preprocessing_warns_and_is_reported(frame):
    df = frame[["normal", "group"]]
    with pytest.warns(NonPrivateOperationWarning, match="WITHOUT differential privacy"):
        model = DPVAESynthesizer(epsilon=1.0, preprocessing="non-private", **TINY).fit(df)
    report = model.privacy_report()
    assert report["private"] is True
    assert report["covers_preprocessing"] is False
    assert report["non_private_statistics"]
    assert any("group" in s for s in report["non_private_statistics"])
    assert "without DP" in report["statement"] and "does not cover" in report["statement"]
    assert not any(s["stage"].startswith("preprocessing") for s in report["spends"])
    # and the raw category set was read from the data: the rare value is in the model
    assert RARE in model.encoder_.column_encoders_["group"].categories_[0].tolist()


def test_zoom_stage_resolves_a_column_far_narrower_than_its_power_of_two_range():
    # years 1995-2003 sit inside one power-of-two bin [1024, 2048): without the zoom stage the
    # mixture input would be a single 16-year-wide bin
    rng = np.random.default_rng(0)
    years = pd.DataFrame({"year": rng.integers(1995, 2004, size=4000)})
    md = Metadata.from_dataframe(years)
    est = estimate_domains(years, md, noise_multiplier=_z(), delta_threshold=1e-6, rng=rng)
    dom = est.domains["year"]
    assert dom["bounds"][0] <= 1995 and dom["bounds"][1] >= 2003  # coarse bounds kept
    values, weights = np.asarray(dom["gmm_values"]), np.clip(dom["gmm_weights"], 0, None)
    inside = (values >= 1995) & (values <= 2003)
    assert weights[inside].sum() >= 0.95 * weights.sum()  # a stray noise bin may clear
    assert set(range(1995, 2004)) <= set(values[inside & (weights > 0)])  # one bin per year
    assert len(est.history) == 3
    flat = estimate_domains(years, md, noise_multiplier=_z(), delta_threshold=1e-6,
                            rng=np.random.default_rng(0), zoom=False)
    assert len(flat.history) == 2
    assert (np.asarray(flat.domains["year"]["gmm_weights"]) > 0).sum() <= 3  # 16-year bins


def test_zoom_keeps_the_full_range_of_a_column_whose_bulk_is_already_resolved():
    # ages 50-101, peaked in the 50s: the bins that clear the Bonferroni threshold are the peak
    # years only; zooming to them would pile every older age onto the zoomed edge
    rng = np.random.default_rng(1)
    ages = pd.DataFrame({"age": np.clip(50 + rng.gamma(1.5, 12.0, 6000), 50, 101).astype(int)})
    md = Metadata.from_dataframe(ages)
    est = estimate_domains(ages, md, noise_multiplier=_z(), delta_threshold=1e-6, rng=rng)
    centres, counts = est.histograms["age"]
    assert centres.min() <= 55 and centres.max() >= 95  # the histogram still spans the tail
    old = ages["age"] >= 80
    mass_old = counts[centres >= 79.5].sum() / counts.sum()
    assert mass_old == pytest.approx(old.mean(), abs=0.05)


def test_zoom_range_rules():
    from nhssynth.privacy.mechanisms import _zoom_range
    edges = np.linspace(1024, 2048, 65)  # 16-wide bins
    noisy = np.zeros(64)
    noisy[[60, 61]] = [3000.0, 1500.0]  # 1984-2016: two coarse bins
    assert _zoom_range(edges, noisy, 100.0, (1024, 2048), integer=True) == (1952.0, 2048.0)
    lone = noisy.copy()
    lone[14] = 150.0  # a lone bin with a twentieth of the mass: noise, ignored
    assert _zoom_range(edges, lone, 100.0, (1024, 2048), integer=True) == (1952.0, 2048.0)
    wide = np.zeros(64)
    wide[10:40] = 500.0  # a core of 30 bins is resolved already: no zoom
    assert _zoom_range(edges, wide, 100.0, (1024, 2048), integer=True) is None
    assert _zoom_range(edges, np.zeros(64), 100.0, (1024, 2048), integer=True) is None


def test_bounds_extend_over_a_thin_tail_spread_over_many_coarse_bins():
    # follow-up days: half the rows spread over [2, 256) at a few hundred per power of two,
    # none of those bins clearing the per-bin threshold on its own at this noise
    from nhssynth.privacy.mechanisms import _extend_bound
    rng = np.random.default_rng(3)
    days = np.concatenate([np.exp(rng.uniform(np.log(3), np.log(256), 3000)),
                           rng.uniform(256, 2000, 3000)]).round()
    frame_days = pd.DataFrame({"days": days.astype(int)})
    md = Metadata.from_dataframe(frame_days)
    z = PrivacyBudget(1.0, 1e-5).mechanism_noise_multiplier(0.2, 3) * np.sqrt(10)  # as with 10 columns
    est = estimate_domains(frame_days, md, noise_multiplier=z, delta_threshold=1e-6, rng=rng)
    lo, hi = est.domains["days"]["bounds"]
    assert lo <= 8 and hi >= 1024
    # the rule itself: a window beyond the bound with a significant sum moves it, noise does not
    beyond = np.array([600.0, 650.0, 580.0, 610.0, 90.0, 0.0, 0.0, 0.0])
    assert _extend_bound(beyond, 160.0, 4.4, 20, -1) == 20 - 5  # 4 bins + 1 bin margin
    assert _extend_bound(np.zeros(8), 160.0, 4.4, 20, -1) == 20
    assert _extend_bound(np.zeros(0), 160.0, 4.4, 0, -1) == 0  # already at the outermost bin
    assert _extend_bound(rng.normal(0, 160, 30), 160.0, 4.4, 20, +1) == 20


def test_a_long_thin_tail_is_kept_where_an_all_column_correction_clipped_it():
    # bilirubin-like: bulk 0.25-2, a quarter of the rows spread thinly over 2-64; with the noise
    # of 35 columns at epsilon 1 no tail bin clears a threshold on its own, and the window
    # test corrected over every column clipped the tail at 2 (SUPPORT2: 27% of bili clipped)
    rng = np.random.default_rng(0)
    bulk = np.exp(rng.uniform(np.log(0.25), np.log(2.0), 3900))
    tail = np.exp(rng.uniform(np.log(2.0), np.log(48.0), 1300))
    frame_bili = pd.DataFrame({"bili": np.concatenate([bulk, tail])})
    md = Metadata.from_dataframe(frame_bili)
    z = PrivacyBudget(1.0, 1e-5).mechanism_noise_multiplier(0.2, 3) * np.sqrt(35)
    clipped = []
    for seed in range(10):
        est = estimate_domains(frame_bili, md, noise_multiplier=z, delta_threshold=1e-6,
                               rng=np.random.default_rng(seed))
        lo, hi = est.domains["bili"]["bounds"]
        clipped.append(float(((frame_bili["bili"] < lo) | (frame_bili["bili"] > hi)).mean()))
    assert np.median(clipped) < 0.08  # the old rule clipped about a quarter


def test_noise_alone_rarely_extends_a_bound():
    # a column with no tail at all: the per-column tail test may stretch a bound by noise with
    # a small probability, and then only by a few powers of two
    values = np.random.default_rng(1).uniform(100, 120, 5000)
    frame_narrow = pd.DataFrame({"x": values})
    md = Metadata.from_dataframe(frame_narrow)
    z = PrivacyBudget(1.0, 1e-5).mechanism_noise_multiplier(0.2, 3) * np.sqrt(35)
    widened = 0
    for seed in range(40):
        lo, hi = estimate_domains(frame_narrow, md, noise_multiplier=z, delta_threshold=1e-6,
                                  rng=np.random.default_rng(seed)).domains["x"]["bounds"]
        assert 2.0 ** -6 * 64 <= lo and hi <= 128 * 2.0 ** 10
        widened += (lo, hi) != (64.0, 128.0)
    assert widened <= 6  # 1% per side and round: about 1 in 40 expected


def test_dp_preprocess_returns_the_released_histograms(frame):
    budget = PrivacyBudget(3.0, 1e-5)
    md = Metadata.from_dataframe(frame)
    _, _, hists = dp_preprocess(frame, md, budget, np.random.default_rng(0),
                                      return_histograms=True)
    assert set(hists) == {"normal", "lognormal", "negative"}
    for name, (centres, counts) in hists.items():
        assert len(centres) == len(counts) and counts.min() >= 0
        assert counts.sum() == pytest.approx(len(frame), rel=0.1)  # the noisy total
        mean = (centres * counts).sum() / counts.sum()
        assert mean == pytest.approx(frame[name].mean(), rel=0.15)


def test_zoomed_histogram_keeps_the_mass_beyond_the_zoomed_range():
    # costs: most rows in a few thousand, a long thin tail to 600k.  The zoom stage resolves
    # the bulk; the rows beyond it are counted in two extra bins and spread over the coarse
    # bins on that side, not piled onto the zoomed range's edge
    rng = np.random.default_rng(5)
    costs = pd.DataFrame({"cost": np.concatenate([rng.uniform(3000, 6000, 4000),
                                                  rng.uniform(20000, 250000, 1000)])})
    md = Metadata.from_dataframe(costs)
    est = estimate_domains(costs, md, noise_multiplier=_z(), delta_threshold=1e-6, rng=rng)
    centres, counts = est.histograms["cost"]
    share = lambda a, b: counts[(centres >= a) & (centres < b)].sum() / counts.sum()
    real = lambda a, b: ((costs["cost"] >= a) & (costs["cost"] < b)).mean()
    assert share(3000, 6000) == pytest.approx(real(3000, 6000), abs=0.08)
    assert share(30000, np.inf) == pytest.approx(real(30000, np.inf), abs=0.08)
    assert real(30000, np.inf) > 0.15
    weights = np.asarray(est.domains["cost"]["gmm_weights"])
    values = np.asarray(est.domains["cost"]["gmm_values"])
    assert weights[values > 30000].sum() > 0  # the mixture input sees the tail too


def test_mass_beyond_a_zoomed_range_follows_the_coarse_shape_or_spreads_evenly():
    from nhssynth.privacy.mechanisms import _spread_beyond
    edges_b = np.arange(0.0, 11.0)  # ten coarse bins
    noisy_b = np.array([-5.0, 30.0, 10.0, 900.0, 800.0, 0.0, -3.0, -1.0, -2.0, -4.0])
    below, above = _spread_beyond(edges_b, noisy_b, np.linspace(3.0, 5.0, 9), (80.0, 12.0), 50.0)
    np.testing.assert_allclose(below[0], [0.5, 1.5, 2.5])
    np.testing.assert_allclose(below[1], [0.0, 60.0, 20.0])  # in proportion to clipped counts
    np.testing.assert_allclose(below[2], below[1])  # 80 clears the threshold: it weights the fit
    np.testing.assert_allclose(above[1], np.full(5, 12.0 / 5))  # no shape to follow: even
    np.testing.assert_allclose(above[2], 0.0)  # 12 is noise-level: no mixture weight
