import time

import numpy as np
import pytest

from nhssynth import Metadata
from nhssynth.metrics import dcr, exact_copy_rate, membership_inference, nearest_distances, nndr

from .test_metrics_data import make_table


@pytest.fixture(scope="module")
def split():
    df = make_table(1600, seed=5)
    return df.iloc[:800], df.iloc[800:], Metadata.from_dataframe(df)


def test_nearest_distances_known_answer():
    ref = np.array([[0.0, 0.0], [3.0, 4.0]])
    d = nearest_distances(np.array([[0.0, 0.0], [3.0, 0.0]]), ref, k=2)
    assert np.allclose(d, [[0, 5], [3, 4]])


def test_copies_of_training_rows(split):
    train, holdout, md = split
    copies = train.sample(400, random_state=0)
    res = dcr(train, copies, holdout, md)
    assert res["share"] == pytest.approx(1.0)
    assert res["score"] == pytest.approx(0.0)
    assert np.allclose(res["dcr_train"], 0.0)
    assert exact_copy_rate(train, copies, md) == 1.0
    assert membership_inference(train, train, holdout, md)["auc"] > 0.95
    assert nndr(train, copies, md)["mean"] < 0.01


def test_fresh_rows_look_private(split):
    train, holdout, md = split
    fresh = make_table(600, seed=99)
    res = dcr(train, fresh, holdout, md)
    assert res["ideal"] == 0.5
    assert abs(res["share"] - 0.5) < 0.08 and res["score"] > 0.8
    assert exact_copy_rate(train, fresh, md) == 0.0
    mia = membership_inference(train, fresh, holdout, md)
    assert abs(mia["auc"] - 0.5) < 0.08
    assert nndr(train, fresh, md)["mean"] > 0.5


def test_unequal_sizes_use_the_matching_ideal(split):
    train, holdout, md = split
    res = dcr(train, make_table(300, seed=7), holdout.iloc[:200], md)
    assert res["ideal"] == pytest.approx(800 / 1000)
    assert abs(res["share"] - 0.8) < 0.1


def test_dcr_5k_by_5k_takes_about_a_second():
    df = make_table(15_000, seed=11)
    md = Metadata.from_dataframe(df)
    train, synth, hold = df.iloc[:5000], df.iloc[5000:10000], df.iloc[10000:]
    t0 = time.perf_counter()
    dcr(train, synth, hold, md)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, f"DCR on 5k x 5k took {elapsed:.1f}s"
