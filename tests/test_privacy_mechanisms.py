"""DP primitives (nhssynth.privacy.mechanisms) and the privacy contract end to end: a rare value
never reaches a fitted model, its samples or its files; declared values are public; reading
the data without DP is an explicit, reported opt-in."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nhssynth import DPVAESynthesizer, Metadata, NonPrivateOperationWarning, TableEncoder
from nhssynth.encoders.domain import release_domain
from nhssynth.privacy.accounting import zcdp_rho_for
from nhssynth.privacy.mechanisms import histogram_edges, spread_beyond, zoom_range

RARE = "ZZ_RARE_PERSON"
TINY = dict(max_epochs=2, batch_size=500, hidden_dims=(16,), latent_dim=4, random_state=0)
RHO = 0.3 * zcdp_rho_for(1.0, 1e-5)


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
    loaded = DPVAESynthesizer.load(tmp_path / "model")
    assert RARE not in set(loaded.sample(200, random_state=1)["group"].dropna())


def test_declared_rare_category_is_kept(frame, tmp_path):
    df = frame[["normal", "group"]]
    md = Metadata.from_dataframe(df).update("group", categories=["alpha", "beta", "gamma", RARE],
                                            domain="declared")
    model = DPVAESynthesizer(epsilon=1.0, metadata=md, **TINY).fit(df)
    assert RARE in model.encoder_.column_encoders_["group"].categories_[0].tolist()
    assert RARE in _saved_text(model, tmp_path / "model")  # public: may be stored
    domains = next(s for s in model.privacy_report().spends if s.stage == "domain release: domains")
    assert domains.delta_extra == 0.0  # no category set released by threshold


def test_non_private_preprocessing_warns_and_is_reported(frame):
    df = frame[["normal", "group"]]
    with pytest.warns(NonPrivateOperationWarning, match="WITHOUT differential privacy"):
        model = DPVAESynthesizer(epsilon=1.0, preprocessing="non-private", **TINY).fit(df)
    report = model.privacy_report()
    assert report.private and not report.covers_preprocessing
    assert any("group" in s for s in report.non_private_statistics)
    assert "without DP" in report.statement and "does not cover" in report.statement
    assert not any(s.stage.startswith("domain release") for s in report.spends)
    # and the raw category set was read from the data: the rare value is in the model
    assert RARE in model.encoder_.column_encoders_["group"].categories_[0].tolist()


def test_a_dp_table_encoder_spends_only_on_undeclared_statistics(frame):
    md = Metadata.from_dataframe(frame).update("group", domain="declared",
                                               categories=["alpha", "beta", "gamma", RARE])
    for name in ("normal", "lognormal", "negative"):
        md = md.update(name, min=-1e5, max=1e5, domain="declared")
    enc = TableEncoder(metadata=md, epsilon=1.0, random_state=0).fit(frame)
    stages = [s["stage"] for s in enc.privacy_spends_]
    assert stages == ["domain release: domains", "domain release: histograms"]
    assert enc.privacy_spends_[0]["columns"] == ["group"]  # its one-way counts, no threshold
    assert enc.non_private_statistics_ == []
    plain = TableEncoder(metadata=md, random_state=0).fit(frame)
    assert plain.privacy_spends_ == [] and plain.domain_ is None
    assert any("mixture fit" in s for s in plain.non_private_statistics_)


def test_zoom_resolves_years_inside_one_power_of_two_bin():
    rng = np.random.default_rng(0)
    years = pd.DataFrame({"year": rng.integers(1995, 2004, size=4000)})
    dom = release_domain(years, Metadata.from_dataframe(years), rho=RHO, rng=rng)["year"]
    centres, counts = dom.centres, dom.value_counts
    inside = (centres >= 1995) & (centres <= 2003)
    assert counts[inside].sum() >= 0.95 * counts.sum()
    assert set(range(1995, 2004)) <= set(np.round(centres[inside & (counts > 0)]).astype(int))


def test_the_histogram_keeps_a_tail_far_beyond_the_bulk():
    # costs: most rows in a few thousand, a long thin tail to 250k
    rng = np.random.default_rng(5)
    costs = pd.DataFrame({"cost": np.concatenate([rng.uniform(3000, 6000, 4000),
                                                  rng.uniform(20000, 250000, 1000)])})
    dom = release_domain(costs, Metadata.from_dataframe(costs), rho=RHO, rng=rng)["cost"]
    share = lambda a, b: dom.value_counts[(dom.centres >= a) & (dom.centres < b)].sum() \
        / dom.value_counts.sum()  # noqa: E731
    real = lambda a, b: ((costs["cost"] >= a) & (costs["cost"] < b)).mean()  # noqa: E731
    assert share(3000, 6000) == pytest.approx(real(3000, 6000), abs=0.08)
    assert share(30000, np.inf) == pytest.approx(real(30000, np.inf), abs=0.08)


def test_zoom_range_rules():
    edges = np.linspace(1024, 2048, 65)  # 16-wide bins
    noisy = np.zeros(64)
    noisy[[60, 61]] = [3000.0, 1500.0]  # 1984-2016: two coarse bins
    assert zoom_range(edges, noisy, 100.0, (1024, 2048), integer=True) == (1952.0, 2048.0)
    lone = noisy.copy()
    lone[14] = 150.0  # a lone bin with a twentieth of the mass: noise, ignored
    assert zoom_range(edges, lone, 100.0, (1024, 2048), integer=True) == (1952.0, 2048.0)
    wide = np.zeros(64)
    wide[10:40] = 500.0  # a core of 30 bins is resolved already: no zoom
    assert zoom_range(edges, wide, 100.0, (1024, 2048), integer=True) is None
    assert zoom_range(edges, np.zeros(64), 100.0, (1024, 2048), integer=True) is None
    # a spike inside a wide core (a thin tail's bins clear tau at a larger budget): zoomed on
    # the bin holding >= 80 % of the cleared mass, the tail left to spread_beyond
    spike = wide.copy()
    spike[37] = 100_000.0
    assert zoom_range(edges, spike, 100.0, (1024, 2048), integer=True) == (1584.0, 1664.0)
    half = wide.copy()
    half[37] = 10_000.0  # 40 % of the cleared mass: the core is resolved, no zoom
    assert zoom_range(edges, half, 100.0, (1024, 2048), integer=True) is None


def test_histogram_edges_follow_the_values_grid():
    one_decimal = histogram_edges(0.4, 10.8, 64, step=0.1)
    assert np.allclose(np.diff(one_decimal), np.diff(one_decimal)[0])
    centres = 0.5 * (one_decimal[1:] + one_decimal[:-1])
    assert np.allclose(np.round(centres * 10) % 1, 0)  # every grid value in one bin, centred
    integers = histogram_edges(1995, 2003, 64, integer=True)
    np.testing.assert_allclose(integers, np.arange(1994.5, 2004.0))
    assert len(histogram_edges(0.0, 1.0, 16)) == 17


def test_mass_beyond_a_zoomed_range_is_spread_in_runs_that_clear_the_noise():
    edges_b = np.arange(0.0, 11.0)  # ten coarse bins
    noisy_b = np.array([-5.0, 60.0, 20.0, 900.0, 800.0, 0.0, -3.0, -1.0, -2.0, -4.0])
    below, above = spread_beyond(edges_b, noisy_b, np.linspace(3.0, 5.0, 9), (300.0, 12.0), 50.0)
    # 300 in proportion to the clipped counts (0, 225, 75), in runs of >= 50 from the zoom
    # outwards: [2, 3) holds 75, [0, 2) the rest (the empty first bin joins its neighbour)
    np.testing.assert_allclose(below[0], [0.0, 2.0, 3.0])
    np.testing.assert_allclose(below[1], [225.0, 75.0])
    assert below[2].all()
    # 12 does not clear the threshold: one bin over the coarse bins above, not occupied
    np.testing.assert_allclose(above[0], [5.0, 10.0])
    np.testing.assert_allclose(above[1], [12.0])
    assert not above[2].any()
    # a thin real tail (300 rows over four coarse bins whose noisy counts are tens) is not
    # cut into bins of tens, which the projection onto non-negative counts would empty
    thin = np.array([80.0, -40.0, 90.0, 70.0, 5000.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    below, _ = spread_beyond(edges_b, thin, np.linspace(4.0, 5.0, 9), (300.0, 0.0), 100.0)
    assert (np.diff(below[0]) > 0).all() and below[0][0] == 0.0 and below[0][-1] == 4.0
    assert (below[1] >= 100.0).all() and below[1].sum() == pytest.approx(300.0)
    assert below[2].all()


@pytest.mark.parametrize("as_category", [False, True], ids=["object", "category-dtype"])
def test_rare_category_never_reaches_an_aim_model_or_its_files(frame, tmp_path, as_category):
    from nhssynth import AIMSynthesizer

    df = frame[["normal", "group"]].copy()
    if as_category:
        df["group"] = pd.Categorical(df["group"])
    model = AIMSynthesizer(epsilon=1.0, random_state=0).fit(df)
    assert RARE not in (model.metadata_["group"].categories or [])
    assert RARE not in _saved_text(model, tmp_path / "model")
    fake = model.sample(5000, random_state=0)
    assert set(fake["group"].dropna()) <= {"alpha", "beta", "gamma"}
    if as_category:
        assert RARE not in list(fake["group"].cat.categories)


def test_zoom_gives_integer_columns_one_bin_per_value_when_less_margin_allows_it():
    # flchain's sample.yr at epsilon 10: 64 bins over [0, 2048) of 33 years each; the zoom
    # kept two bins of margin (136 years) and bins of three years, so 1996's 44 % was drawn
    # over 1994-1996.  Integers are a grid of step 1 like any other.
    from nhssynth.privacy.mechanisms import histogram_edges, zoom_range
    edges = histogram_edges(0.0, 2048.0, 64, step=1.0)
    noisy = np.zeros(edges.size - 1)
    noisy[np.searchsorted(edges, 1996.0) - 1] = 7_874.0
    zoomed = zoom_range(edges, noisy, 30.0, (0.0, 2048.0), integer=True, n_bins=64)
    assert zoomed is not None and zoomed[0] <= 1995 and zoomed[1] >= 2003
    fine = histogram_edges(*zoomed, 64, integer=True)
    assert np.allclose(np.diff(fine), 1.0)
