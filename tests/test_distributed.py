"""Data-parallel DP-SGD (``DPVAESynthesizer(n_processes=2)``): 2 processes on localhost (gloo)
give the same epsilon, the same weights as one process (noise added once), and fail cleanly."""
import copy
import multiprocessing

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from nhssynth import DPVAESynthesizer
from nhssynth.exceptions import NotFittedError
from nhssynth.metadata import Metadata
from nhssynth.privacy.dpsgd import GaussianNoise, add_noise, add_noise_sharded
from nhssynth.synthesizers.vae.distributed import DistributedTrainingError, _devices


def _table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(50, 12, n).clip(18, 90)
    sex = rng.choice(["F", "M"], n)
    ward = np.where(age > 60, rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
                    rng.choice(["a", "b", "c"], n, p=[0.1, 0.3, 0.6]))
    return pd.DataFrame({"age": age, "sex": sex, "ward": ward})


def _metadata():  # public domains: nothing spent on the domain, a fast encoder
    return Metadata.from_dict({"columns": {
        "age": {"kind": "continuous", "dtype": "float64", "min": 18, "max": 90},
        "sex": {"kind": "categorical", "dtype": "object", "categories": ["F", "M"]},
        "ward": {"kind": "categorical", "dtype": "object", "categories": ["a", "b", "c"]}}})


def _model(**kw):
    params = {"epsilon": 3.0, "max_epochs": 3, "batch_size": 64, "hidden_dims": (16,),
              "calibrate": False, "metadata": _metadata(), "random_state": 0}
    params.update(kw)
    return DPVAESynthesizer(**params)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.network_.state_dict().items()}


@pytest.fixture(scope="module")
def single_and_two():
    df = _table()
    return df, _model().fit(df), _model(n_processes=2).fit(df)


def test_two_processes_spend_the_same_epsilon(single_and_two):
    _, one, two = single_and_two
    assert two.epsilon_ == one.epsilon_  # the accountant sees the same (sigma, q, steps)
    assert two.noise_multiplier_ == one.noise_multiplier_
    assert two.sample_rate_ == one.sample_rate_
    assert two.n_steps_ == one.n_steps_ == 3 * round(400 / 64)
    assert [h["epsilon"] for h in two.history_] == [h["epsilon"] for h in one.history_]
    assert two.privacy_report_.epsilon == one.privacy_report_.epsilon


def test_two_processes_reproduce_the_single_process_weights(single_and_two):
    """Same seed -> same batches, same reparameterisation noise, same DP noise, added once: the
    weights agree up to the order of float sums.  Noise added on each of the 2 ranks would make
    the gradient noise sqrt(2) times larger and the weights differ at the first step."""
    _, one, two = single_and_two
    w1, w2 = _weights(one), _weights(two)
    assert w1.keys() == w2.keys()
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)
    for h1, h2 in zip(one.history_, two.history_):
        assert h1["rows"] == h2["rows"] and h1["steps"] == h2["steps"]
        assert h2["loss"] == pytest.approx(h1["loss"], rel=1e-5)
    # and the models draw the same rows (quality identical, not just within seed noise)
    s1, s2 = one.sample(300, random_state=1), two.sample(300, random_state=1)
    pd.testing.assert_series_equal(s1["ward"], s2["ward"])
    np.testing.assert_allclose(s1["age"], s2["age"], rtol=1e-3)


def _fake_two_ranks(grads_by_rank, params, sigma, C, B, seed=0, secure=False):
    """Run add_noise_sharded for ranks 1 and 0 in one process with an all-reduce that sums."""
    flats = {}
    results = {}
    for rank in (1, 0):
        noise = GaussianNoise(torch.Generator().manual_seed(seed), secure=secure)

        def all_reduce(t, rank=rank):
            flats[rank] = t.clone()
            if rank == 0:
                t.add_(flats[1])

        add_noise_sharded(grads_by_rank[rank], params, sigma, C, B, noise, rank=rank,
                          all_reduce=all_reduce)
        results[rank] = torch.cat([p.grad.reshape(-1).clone() for p in params])
    return results


def test_sharded_noise_is_added_once_with_the_single_process_scale():
    p = torch.nn.Parameter(torch.zeros(40_000))
    q = torch.nn.Parameter(torch.zeros(3, 5))
    g0 = {p: torch.full((40_000,), 1.0), q: torch.ones(3, 5)}
    g1 = {p: torch.full((40_000,), 2.0), q: torch.ones(3, 5)}
    out = _fake_two_ranks([g0, g1], [p, q], sigma=2.0, C=0.5, B=10.0)[0]
    assert abs(out[:40_000].mean().item() - 0.3) < 0.01  # (1 + 2) / 10
    assert abs(out[:40_000].std().item() - 2.0 * 0.5 / 10.0) < 0.003  # once, not sqrt(2) x
    # exactly what one process computes on the summed clipped gradients, same generator
    add_noise({p: g0[p] + g1[p], q: g0[q] + g1[q]}, [p, q], 2.0, 0.5, 10.0,
              GaussianNoise(torch.Generator().manual_seed(0)))
    single = torch.cat([p.grad.reshape(-1), q.grad.reshape(-1)])
    torch.testing.assert_close(out, single)


def test_sharded_secure_noise_is_drawn_by_rank_zero_only():
    p = torch.nn.Parameter(torch.zeros(40_000))
    zero = {p: torch.zeros(40_000)}
    out = _fake_two_ranks([zero, zero], [p], sigma=1.0, C=1.0, B=1.0, secure=True)[0]
    assert abs(out.std().item() - 1.0) < 0.02


def test_non_private_training_is_data_parallel_too():
    df = _table(200)
    kw = {"epsilon": None, "allow_non_private": True, "max_epochs": 2, "batch_size": 32}
    one = _model(**kw).fit(df)
    two = _model(n_processes=2, **kw).fit(df)
    for k, v in _weights(one).items():
        torch.testing.assert_close(_weights(two)[k], v, rtol=1e-4, atol=1e-5)


def test_too_few_rows_per_process_is_refused_before_any_work():
    df = _table(40)
    with pytest.raises(ValueError, match="n_processes=4 is too many for batch_size=2"):
        _model(batch_size=2, n_processes=4).fit(df)
    with pytest.raises(InvalidParameterError):
        _model(n_processes=0).fit(df)


def test_devices_need_one_gpu_per_process():
    assert _devices("cpu", 3) == ("gloo", ["cpu"] * 3)
    with pytest.raises(ValueError, match="one GPU per process"):
        _devices("cuda", torch.cuda.device_count() + 1)
    with pytest.raises(ValueError, match="not 'mps'"):
        _devices("mps", 2)


@pytest.mark.parametrize("fault, message", [
    ("1:5:exit", r"rank 1 died \(exit code 3\)"),
    ("0:4:raise", r"rank 0 raised RuntimeError: injected fault on rank 0"),
])
def test_a_worker_that_dies_or_raises_fails_the_fit_without_a_model(monkeypatch, fault, message,
                                                                    single_and_two):
    """``os._exit`` stands for an out-of-memory kill; the survivor, blocked in an all-reduce or
    failing on the lost connection, is stopped.  An earlier model is dropped too: no mix of an
    old network and a new encoder."""
    df, _, two = single_and_two
    monkeypatch.setenv("NHSSYNTH_DISTRIBUTED_FAULT", fault)
    model = copy.deepcopy(two)  # fitted: the failed refit must not keep its network
    with pytest.raises(DistributedTrainingError, match=message) as info:
        model.fit(df)
    assert "no model was fitted" in str(info.value)
    with pytest.raises(NotFittedError):
        check_is_fitted(model, "network_")
    with pytest.raises(NotFittedError):
        model.sample(5)
    assert multiprocessing.active_children() == []  # the surviving worker was stopped


def test_secure_mode_across_processes_trains_as_well_within_seed_noise(single_and_two):
    """Secure noise is not reproducible, so no weights to compare: the same epsilon, and the
    loss ends where the seeded single-process fit's does (seed noise: +-10% here)."""
    df, one, _ = single_and_two
    secure = _model(secure_mode=True, n_processes=2).fit(df)
    assert secure.epsilon_ == one.epsilon_
    final, reference = secure.history_[-1]["loss"], one.history_[-1]["loss"]
    assert 0.67 * reference < final < 1.5 * reference
    assert final < 0.5 * secure.history_[0]["loss"]  # it learnt
