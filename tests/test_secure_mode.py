"""secure_mode: DP noise from the OS CSPRNG, correct distributions, not seedable."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from nhssynth import Metadata
from nhssynth import DPVAESynthesizer
from nhssynth.privacy.dpsgd import GaussianNoise
from nhssynth.privacy.secure import SecureGaussian, secure_uniform

TINY = dict(max_epochs=2, batch_size=250, hidden_dims=(16,), latent_dim=4, random_state=0)


def test_secure_uniform_range_and_bits():
    u = secure_uniform(200_000)
    assert u.dtype == np.float64 and u.min() > 0 and u.max() <= 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert len(np.unique(u)) == len(u)  # 53 random bits: no collisions at this size
    assert not np.array_equal(secure_uniform(8), secure_uniform(8))


@pytest.mark.parametrize("std", [1.0, 3.5])
def test_secure_gaussian_is_normal_with_the_right_std(std):
    x = SecureGaussian().normal((400, 500), std)
    assert x.shape == (400, 500) and x.dtype == np.float64
    flat = x.ravel()
    assert abs(flat.mean()) < 5 * std / np.sqrt(flat.size)
    assert flat.std() == pytest.approx(std, rel=0.01)
    assert stats.kstest(flat / std, "norm").pvalue > 1e-3
    # the four-draw sum keeps Gaussian tails (kurtosis 3, not the 2.x of a sum of uniforms)
    assert stats.kurtosis(flat, fisher=False) == pytest.approx(3.0, abs=0.06)


def test_secure_laplace_has_the_right_distribution():
    scale = 2.0
    x = SecureGaussian().laplace((200_000,), scale)
    assert stats.kstest(x, "laplace", args=(0.0, scale)).pvalue > 1e-3
    assert x.std() == pytest.approx(np.sqrt(2) * scale, rel=0.02)


def test_secure_noise_for_dp_sgd_ignores_the_seed():
    gen_a, gen_b = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a = GaussianNoise(gen_a, secure=True)((300, 100), 2.0, torch.float32)
    b = GaussianNoise(gen_b, secure=True)((300, 100), 2.0, torch.float32)
    assert a.dtype == torch.float32 and a.shape == (300, 100)
    assert not torch.equal(a, b)
    assert float(a.std()) == pytest.approx(2.0, rel=0.03)
    seeded = [GaussianNoise(torch.Generator().manual_seed(0))((5,), 1.0, torch.float32) for _ in range(2)]
    assert torch.equal(*seeded)  # the default (non-secure) noise is reproducible


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 1500
    return pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b"], n).astype(object)})


def _weights(model):
    return torch.cat([p.detach().ravel() for p in model.network_.parameters()])


def test_secure_mode_fits_and_is_not_reproducible(table):
    a = DPVAESynthesizer(epsilon=2.0, secure_mode=True, **TINY).fit(table)
    b = DPVAESynthesizer(epsilon=2.0, secure_mode=True, **TINY).fit(table)
    assert a.privacy_report().details["secure_mode"] is True
    assert 0 < a.epsilon_ <= 2.0 and a.epsilon_ == pytest.approx(b.epsilon_)
    # undeclared metadata: the DP preprocessing noise is secure as well, and also differs
    assert a.privacy_report().spends[0].stage == "domain release: domains"
    assert not torch.equal(_weights(a), _weights(b))
    # the Poisson batches are secret too (subsampling amplification needs it): their sizes differ
    assert [h["rows"] for h in a.history_] != [h["rows"] for h in b.history_]
    assert a.__sklearn_tags__().non_deterministic
    assert len(a.sample(100, random_state=0)) == 100


def test_seeded_mode_is_reproducible(table):
    md = Metadata.from_dataframe(table).update("x", min=-10.0, max=10.0, domain="declared")
    a = DPVAESynthesizer(epsilon=2.0, metadata=md, **TINY).fit(table)
    b = DPVAESynthesizer(epsilon=2.0, metadata=md, **TINY).fit(table)
    assert torch.equal(_weights(a), _weights(b))
    assert [h["rows"] for h in a.history_] == [h["rows"] for h in b.history_]
    assert not a.__sklearn_tags__().non_deterministic
