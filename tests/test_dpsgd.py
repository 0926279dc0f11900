"""Ghost clipping must equal clipping of explicitly materialised per-sample gradients."""
import numpy as np
import pytest
import torch
from torch.func import grad, vmap

from nhssynth.base import OutputSpan
from nhssynth.synthesizers.vae.losses import SpanLayout, kl_divergence, reconstruction_loss
from nhssynth.synthesizers.vae.networks import VAENetwork
from nhssynth.synthesizers.vae.training import vae_losses
from nhssynth.privacy.dpsgd import GaussianNoise, add_noise, ghost_clipped_gradients, poisson_batch_indices

SPANS = [OutputSpan("a", "continuous", 0, 1), OutputSpan("a", "softmax", 1, 3, "mode"),
         OutputSpan("b", "softmax", 4, 4, "category"), OutputSpan("c", "binary", 8, 2)]


def _batch(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 10), dtype=np.float32)
    x[:, 0] = rng.uniform(-1, 1, n)
    x[np.arange(n), 1 + rng.integers(0, 3, n)] = 1
    x[np.arange(n), 4 + rng.integers(0, 4, n)] = 1
    x[:, 8:10] = rng.uniform(size=(n, 2)) < 0.4
    return torch.from_numpy(x)


def _reference(net, layout, x, beta, eps_noise, max_grad_norm):
    """Per-sample gradients via torch.func.vmap(grad), then explicit clipping."""
    params = {k: v.detach() for k, v in net.named_parameters()}

    def one(p, xi, ei):
        def loss(p):
            h = xi[None]  # an independent functional re-implementation of the forward pass
            for i in range(len(net.encoder.layers)):
                h = torch.nn.functional.linear(h, p[f"encoder.layers.{i}.weight"], p[f"encoder.layers.{i}.bias"])
                if i < len(net.encoder.layers) - 1:
                    h = torch.relu(h)
            mu, logvar = h[:, :net.latent_dim], h[:, net.latent_dim:].clamp(-12.0, 8.0)
            z = mu + torch.exp(0.5 * logvar) * ei[None]
            o = z
            for i in range(len(net.decoder.layers)):
                o = torch.nn.functional.linear(o, p[f"decoder.layers.{i}.weight"], p[f"decoder.layers.{i}.bias"])
                if i < len(net.decoder.layers) - 1:
                    o = torch.relu(o)
            rec = reconstruction_loss(xi[None], o[:, :net.n_features], o[:, net.n_features:], layout)
            return (rec + beta * kl_divergence(mu, logvar)).sum()
        return grad(loss)(p)

    per_sample = vmap(one, in_dims=(None, 0, 0))(params, x, eps_noise)
    flat = torch.cat([g.reshape(x.shape[0], -1) for g in per_sample.values()], dim=1)
    norms = flat.norm(dim=1)
    scale = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    clipped = {k: (g * scale.view(-1, *[1] * (g.dim() - 1))).sum(0) for k, g in per_sample.items()}
    return norms, clipped


@pytest.mark.parametrize("max_grad_norm", [0.05, 1.0, 1e6])
def test_ghost_norms_and_clipped_sum_match_vmap_reference(max_grad_norm):
    torch.manual_seed(0)
    net = VAENetwork(10, 1, latent_dim=4, hidden_dims=(16, 8))
    g = torch.Generator().manual_seed(3)
    net.reset_parameters(g)
    net = net.double()
    layout = SpanLayout(SPANS, 10)
    x = _batch().double()
    eps_noise = torch.randn(x.shape[0], 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss_fn(recorder):  # make vae_losses draw exactly eps_noise
        orig = torch.randn
        try:
            torch.randn = lambda *a, **k: eps_noise
            rec, kl = vae_losses(net, layout, x, 0.7, g, recorder)
        finally:
            torch.randn = orig
        return rec + 0.7 * kl

    grads, norms, _ = ghost_clipped_gradients(loss_fn, max_grad_norm)
    ref_norms, ref_clipped = _reference(net, layout, x, 0.7, eps_noise, max_grad_norm)
    torch.testing.assert_close(norms, ref_norms, rtol=1e-5, atol=1e-9)
    named = dict(net.named_parameters())
    assert set(grads) == set(named.values())
    for name, p in named.items():
        torch.testing.assert_close(grads[p], ref_clipped[name], rtol=1e-5, atol=1e-9)
    if max_grad_norm == 0.05:
        assert (ref_norms > max_grad_norm).all()  # the test really exercises clipping
    if max_grad_norm == 1e6:
        assert (ref_norms < max_grad_norm).all()


def test_poisson_sampling_rate_and_independence():
    g = torch.Generator().manual_seed(0)
    sizes = [len(poisson_batch_indices(10_000, 0.02, g)) for _ in range(200)]
    assert abs(np.mean(sizes) - 200) < 5
    assert np.std(sizes) > 5  # batch size varies: records are included independently
    assert len(set(sizes)) > 20


def test_noise_scale_and_normalisation():
    p = torch.nn.Parameter(torch.zeros(20000))
    grads = {p: torch.full((20000,), 3.0)}
    noise = GaussianNoise(torch.Generator().manual_seed(0))
    add_noise(grads, [p], noise_multiplier=2.0, max_grad_norm=0.5, expected_batch_size=10.0, noise=noise)
    assert abs(p.grad.mean().item() - 0.3) < 0.01
    assert abs(p.grad.std().item() - 2.0 * 0.5 / 10.0) < 0.003


@pytest.mark.parametrize("n, rate", [(5_000, 0.02), (400, 0.2), (50, 0.9)])
def test_sparse_poisson_sampling_has_the_law_of_independent_inclusion(n, rate):
    # the O(batch) draw used for large tables (forced here with sparse_from=0): the batch size
    # is Binomial(n, q) and every record is included with probability q, independently of the
    # others (pairs included together with probability q^2)
    g = torch.Generator().manual_seed(1)
    trials = 3_000
    counts = np.zeros(n)
    pair = 0
    sizes = []
    for _ in range(trials):
        idx = poisson_batch_indices(n, rate, g, sparse_from=0).numpy()
        assert (np.diff(idx) > 0).all() and (idx >= 0).all() and (idx < n).all()
        counts[idx] += 1
        sizes.append(len(idx))
        pair += (0 in idx) and (n - 1 in idx)
    mean, var = n * rate, n * rate * (1 - rate)
    assert abs(np.mean(sizes) - mean) < 4 * np.sqrt(var / trials)
    assert abs(np.var(sizes) / var - 1) < 0.15
    freq = counts / trials
    assert abs(freq.mean() - rate) < 0.01
    se = np.sqrt(rate * (1 - rate) / trials)
    assert np.abs(freq - rate).max() < 5 * se  # no record favoured
    assert abs(pair / trials - rate ** 2) < 5 * np.sqrt(rate ** 2 / trials) + 1e-3


def test_sparse_poisson_sampling_is_seeded_and_used_for_large_tables():
    a = poisson_batch_indices(2_000_000, 1e-4, torch.Generator().manual_seed(3))
    b = poisson_batch_indices(2_000_000, 1e-4, torch.Generator().manual_seed(3))
    dense = poisson_batch_indices(2_000_000, 1e-4, torch.Generator().manual_seed(3),
                                  sparse_from=10 ** 9)
    assert torch.equal(a, b) and 100 < len(a) < 320
    assert not torch.equal(a, dense)  # the large-table path is the O(batch) draw
