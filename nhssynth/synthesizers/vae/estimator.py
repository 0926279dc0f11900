"""DPVAESynthesizer: a tabular variational auto-encoder trained with DP-SGD."""
from __future__ import annotations

import copy
import logging
import math
import numbers
import os
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ...base import GeneratorMixin, OutputSpan, check_n_samples
from ...calibration.marginals import ValueBins, column_bins, noisy_marginals, value_cuts
from ...calibration.pairs import coarse_groups, noisy_pair_marginals, select_pairs
from ...calibration.quantile_matching import apply_quantile_maps, fit_quantile_maps
from ...calibration.raking import rake_factors, rake_select
from ...encoders.gmm import GMMEncoder
from ...encoders.table import TableEncoder
from ...exceptions import NonPrivateOperationWarning, PrivacyBudgetError, PrivacyWarning
from ...io import load_synthesizer, save_synthesizer
from ...metadata import as_metadata
from ...privacy.accounting import check_accountant
from ...privacy.budget import PrivacyBudget
from ...privacy.mechanisms import (column_to_float, data_statistics, dp_preprocess,
                                  publish_encoder_metadata)
from ...privacy.secure import SecureGaussian
from .init import decoder_bias
from .losses import (LOG_SCALE_MAX, LOG_SCALE_MIN, SpanLayout, kl_divergence, reconstruction_loss,
                     squash_log_scale)
from .networks import VAENetwork
from .training import DPSettings, train_vae

logger = logging.getLogger("nhssynth")

__all__ = ["DPVAESynthesizer"]

_SAMPLE_CHUNK = 16384
_RAKE_POOL = (50_000, 200_000)  # prior draws the raking factors are fitted on (20 per row)
# raw decoder output giving a continuous scale of 0.25 (one sd of a mode) through squash_log_scale
_INITIAL_RAW_LOG_SCALE = math.log((math.log(0.25) - LOG_SCALE_MIN)
                                  / (LOG_SCALE_MAX - math.log(0.25)))
_VALUE_BINS = 16  # equal-mass value bins per mixture column for the DP marginals
_RAKE_CELLS = 20_000_000  # candidate cells (rows x features) raked together: ~80 MB
_DP_GMM_COMPONENTS = 5
_QUANTILE_MATCHING = True  # off only to measure what matching adds (benchmarks, experiments)
_MAX_PAIRS = 10  # two-way marginals released: the heaviest edges of a spanning tree


def _seed_from(random_state: Any) -> int | None:
    """An integer seed from an int / RandomState / Generator, or None for fresh entropy."""
    if random_state is None:
        return None
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator, got {random_state!r}.")


class _SecureNumpyLike:
    """``numpy.random.Generator.normal``-compatible view of the secure Gaussian sampler."""

    def __init__(self, secure) -> None:
        self._secure = secure

    def normal(self, loc=0.0, scale=1.0, size=None):
        shape = (size,) if isinstance(size, int) else tuple(size or ())
        return loc + self._secure.normal(shape, scale)


def _torch_generator(seed: int | None, device: str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed if seed is not None else int(np.random.SeedSequence().entropy % (2**63)))
    return g


def _exact_histograms(frame: pd.DataFrame, metadata, encoder, n_bins: int = 128) -> dict:
    """Exact ``(centres, counts)`` histograms of the mixture-encoded numeric columns between
    their encoder's bounds (whole-integer bins for integer columns of a short range): what DP
    preprocessing releases with noise, for non-private fits."""
    out = {}
    for col in metadata:
        enc = encoder.column_encoders_.get(col.name)
        if not isinstance(enc, GMMEncoder) or col.kind not in ("continuous", "integer"):
            continue
        lo, hi = (float(b) for b in enc.bounds_[0])
        if col.kind == "integer" and hi - lo + 1 <= 2 * n_bins:
            edges = math.floor(lo) - 0.5 + np.arange(math.ceil(hi) - math.floor(lo) + 2, dtype=np.float64)
        else:
            edges = np.linspace(lo, hi, n_bins + 1)
        values = column_to_float(frame[col.name], col)
        values = np.clip(values[np.isfinite(values)], edges[0], edges[-1])
        out[col.name] = (0.5 * (edges[1:] + edges[:-1]),
                         np.histogram(values, bins=edges)[0].astype(np.float64))
    return out


def _value_bins(encoder, metadata, histograms: dict) -> dict[str, ValueBins]:
    """Value bins for the DP marginals of every mixture-encoded column with a DP histogram from
    preprocessing (none for declared bounds): equal-mass cuts of that histogram."""
    out = {}
    decimals = {c.name: c.decimals for c in encoder._columns_}
    for col in metadata:
        enc = encoder.column_encoders_.get(col.name)
        if col.name not in histograms or not isinstance(enc, GMMEncoder):
            continue
        cuts = value_cuts(*histograms[col.name], _VALUE_BINS)
        if len(cuts):
            out[col.name] = ValueBins(
                means=np.asarray(enc.means_[0], dtype=np.float64),
                stds=np.asarray(enc.stds_[0], dtype=np.float64),
                weights=np.asarray(enc.weights_[0], dtype=np.float64),
                lo=float(enc.bounds_[0, 0]), hi=float(enc.bounds_[0, 1]), cuts=cuts,
                decimals=decimals.get(col.name))
    return out


class DPVAESynthesizer(GeneratorMixin, BaseEstimator):
    """Differentially private variational auto-encoder for mixed-type tables.

    ``fit`` trains a VAE on the encoded table with DP-SGD (Poisson subsampling, per-sample
    clipping, Gaussian noise); ``sample`` decodes latent draws from the prior ``N(0, I)``.
    Nothing derived from individual training rows (posterior latents, value pools, exact
    min/max) is used at sampling time, so the samples inherit the training guarantee.

    Parameters
    ----------
    epsilon : float or None, default=1.0
        Privacy budget for training.  ``None`` trains without differential privacy and warns
        (:class:`~nhssynth.exceptions.NonPrivateOperationWarning`) unless
        ``allow_non_private=True``.  The budget is split between preprocessing (when the
        encoder must estimate statistics from data, see ``docs/privacy.md``) and DP-SGD.
    delta : float or None, default=None
        Target delta.  ``None`` uses ``min(1e-5, 0.1 / n_rows)``, well below ``1 / n_rows``.
        A delta of ``1 / n_rows`` or more raises :class:`~nhssynth.exceptions.PrivacyBudgetError`.
    max_grad_norm : float, default=1.0
        Per-sample gradient clipping bound ``C``.
    noise_multiplier : float or None, default=None
        Noise std relative to ``C``.  ``None`` solves for the smallest value that keeps the
        accountant's epsilon at or below ``epsilon`` after ``max_epochs`` epochs.
    max_epochs : int, default=60
        Passes over the data (``1 / sample_rate`` Poisson steps each).  DP noise is calibrated
        for all of them in advance (training never stops early and overspends).
    batch_size : int, default=1024
        Expected batch size; the Poisson sampling rate is ``batch_size / n_rows``.  DP-SGD likes
        large batches: the noise is added once per batch, so its size relative to the summed
        gradients falls as ``1 / batch_size``.  Must not exceed the number of rows (a clear
        error says so); on tables of a few thousand rows a quarter of the rows is a good choice.
    learning_rate : float, default=0.01
        Adam learning rate; high because clipped, noised gradients are small and few.
    latent_dim : int, default=4
        Size of the latent space.
    hidden_dims : tuple of int, default=(128,)
        Widths of the encoder's hidden layers (the decoder mirrors them).  Small on purpose:
        DP noise is added to every weight, so fewer weights mean more signal per weight.
    beta : float, default=0.3
        Weight of the KL term (``beta``-VAE; 1 is the evidence lower bound).  Below 1 the
        latent code keeps more of each row, which under DP noise is what carries relationships
        between columns into the samples; the raking corrects the marginals that a prior/posterior
        mismatch would otherwise distort.

        These defaults (one hidden layer of 128, latent 4, beta 0.3, batches of 1024, 60 epochs,
        learning rate 0.01) were chosen on flchain and SUPPORT2 at epsilon 1, 3 and 10 (three
        seeds each) against the previous ones (two layers of 128, latent 8, beta 1, batches of
        512, 40 epochs, learning rate 0.005): overall fidelity at epsilon 1 0.919 -> 0.934
        (flchain) and 0.897 -> 0.892 (SUPPORT2), at epsilon 3 0.932 -> 0.950 and 0.934 ->
        0.938, and flchain keeps part of its relationships where the old defaults kept none
        (``benchmarks/bench_quality.py``; a hidden layer of 64 scored 0.929 / 0.897 at
        epsilon 1 with fewer relationships kept).
    weight_decay : float, default=0.0
    accountant : {"prv", "rdp"}, default="prv"
        Opacus accountant for the reported epsilon (PRV is tight; RDP over-reports; GDP is
        refused because it can under-report).
    secure_mode : bool, default=False
        Draw all DP noise (DP-SGD and DP preprocessing) from a cryptographically secure
        generator seeded by OS entropy; fits are then not reproducible.
    preprocessing : {"dp", "non-private"}, default="dp"
        How the default encoder gets statistics the metadata does not declare (category sets,
        bounds, mixture fits, the value-bin cuts of numeric marginals): estimated with DP and
        charged to the budget (``"dp"``), or read from the data (``"non-private"``: warns, and
        the guarantee then covers training and the noisy marginals only).
        Declared categories and bounds spend nothing; numeric columns are still histogrammed
        (with DP) for their mixture fit.
    preprocessing_fraction : float, default=0.2
        Share of epsilon planned for DP preprocessing, when it is needed (the composition is
        sub-additive: at epsilon 1, 0.2 instead of 0.1 raised DP-SGD noise by only 2% and
        improved fidelity on flchain over three seeds).
    marginal_fraction : float, default=0.3
        Share of epsilon for DP one-way marginals of every column; samples are raked to match
        them (post-processing), correcting the marginals that DP-SGD noise blurs.  0 disables.
        With ``epsilon=None`` any positive value takes the marginals exactly (no noise).
        The composition is sub-additive: at epsilon 1, 0.3 instead of 0.1 raises DP-SGD noise by
        a few percent and lifted flchain's overall fidelity (three seeds) from 0.878 to 0.891.
    pair_fraction : float, default=0.3
        Share of epsilon for DP two-way marginals of the (at most 10) most dependent column
        pairs, on at most 4 coarse groups per column; samples are raked to them as well.  The
        pairs are chosen after training from a draw of the trained generator (a maximum
        spanning tree of the mutual information in that draw: post-processing, no cost), so
        DP-SGD needs to learn a relationship only well enough to have it selected.  0 disables.
        flchain, three seeds, 0 -> 0.3: overall fidelity at epsilon 1 / 3 / 10 0.934 -> 0.942,
        0.950 -> 0.958, 0.959 -> 0.971, relationships kept 0.12 -> 0.27, 0.24 -> 0.46,
        0.38 -> 0.59 (0.2 and 0.4 were 0.937 and 0.940 at epsilon 1 with 5 groups; 3, 5 and 7
        groups scored 0.942, 0.938, 0.933); SUPPORT2 (47 columns) at epsilon 1 0.892 -> 0.896.
    oversample : float, default=20.0
        With marginals: draw ``oversample * n_samples`` candidates and keep ``n_samples``.  The
        most a cell the generator under-produces can be up-weighted is about ``oversample``
        times.  flchain, epsilon 1, overall over three seeds (one-way raking only): 0.865 with
        3, 0.878 with 10, 0.902 with 20, 0.903 with 30.  Two-way marginals ask more of the
        weights (epsilon 3: 0.958 with 20, 0.963 with 50), but since numeric columns are
        quantile-matched instead of weighted, 20 does as well as 40 (flchain epsilon 1 / 3:
        0.945 / 0.964 vs 0.944 / 0.965; SUPPORT2 epsilon 1: 0.916 both).  Sampling is done in
        chunks of bounded memory; its cost grows with ``oversample``.
    metadata : Metadata, path or dict, optional
        Used to build the default :class:`~nhssynth.TableEncoder` when ``fit`` gets a DataFrame.
    encoder_params : dict, optional
        Extra keyword arguments for that default encoder.  With an epsilon, the encoder's
        ``gmm_components`` defaults to 5 instead of 10 (see the comment in ``_fit_encoder``).
    allow_non_private : bool, default=False
        Acknowledge non-private operation (``epsilon=None``) and silence the warning.
    device : str, default="cpu"
        Torch device for training and sampling.
    verbose : bool or int, default=False
        Progress bar over epochs (loss, epsilon so far).
    random_state : int, RandomState, Generator or None
        Seeds weight initialisation, Poisson sampling, reparameterisation and DP noise (unless
        ``secure_mode``): the same seed reproduces the same fit on CPU.

    Attributes
    ----------
    epsilon_ : float
        Privacy spent in total (training plus preprocessing), per the accountant; ``<= epsilon``.
    delta_ : float
    noise_multiplier_ : float
    sample_rate_ : float
    n_epochs_ : int
    n_steps_ : int
    history_ : list of dict
        Per epoch: ``loss``, ``reconstruction``, ``kl``, ``epsilon`` (spent so far), ``seconds``.
    output_spans_ : list of OutputSpan
    encoder_ : TableEncoder or None
        The fitted encoder when ``fit`` received a DataFrame/array without spans.
    network_ : torch.nn.Module
    marginals_ : list of ndarray or None
        The released one-way marginals (DP; exact without epsilon), one per modelled column.
    value_bins_ : dict of str to ValueBins or None
        Value bins of the numeric columns whose marginals are taken on their decoded value
        (cuts from DP histograms only).
    quantile_maps_ : dict of str to QuantileMap or None
        Monotone maps of the value-binned numeric columns' generated values onto their released
        marginals, tabulated from a prior draw (post-processing).
    pair_marginals_ : list of PairMarginal or None
        The released two-way marginals (DP; exact without epsilon) of the column pairs chosen
        from the trained generator's own draws.
    rake_factors_ : list of ndarray or None
        Raking factors per marginal cell (one-way, then two-way), fitted on a prior draw
        (post-processing).
    """

    def __init__(self, *, epsilon: float | None = 1.0, delta: float | None = None,
                 max_grad_norm: float = 1.0, noise_multiplier: float | None = None,
                 max_epochs: int = 60, batch_size: int = 1024, learning_rate: float = 0.01,
                 latent_dim: int = 4, hidden_dims: Sequence[int] = (128,), beta: float = 0.3,
                 weight_decay: float = 0.0, accountant: str = "prv", secure_mode: bool = False,
                 preprocessing: str = "dp", preprocessing_fraction: float = 0.2,
                 marginal_fraction: float = 0.3, pair_fraction: float = 0.3, oversample: float = 20.0,
                 metadata: Any = None, encoder_params: dict | None = None,
                 allow_non_private: bool = False, device: str = "cpu",
                 verbose: bool | int = False, random_state: Any = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.noise_multiplier = noise_multiplier
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.beta = beta
        self.weight_decay = weight_decay
        self.accountant = accountant
        self.secure_mode = secure_mode
        self.preprocessing = preprocessing
        self.preprocessing_fraction = preprocessing_fraction
        self.marginal_fraction = marginal_fraction
        self.pair_fraction = pair_fraction
        self.oversample = oversample
        self.metadata = metadata
        self.encoder_params = encoder_params
        self.allow_non_private = allow_non_private
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------------------------
    # parameter validation
    # ------------------------------------------------------------------------------------
    def _validate_params(self) -> None:
        def positive(name, value, integer=False):
            kind = (numbers.Integral,) if integer else (numbers.Real,)
            if isinstance(value, bool) or not isinstance(value, kind) or not value > 0 \
                    or (not integer and not math.isfinite(value)):
                raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}.")

        if self.epsilon is not None:
            if isinstance(self.epsilon, bool) or not isinstance(self.epsilon, numbers.Real) \
                    or not self.epsilon > 0 or not math.isfinite(self.epsilon):
                raise PrivacyBudgetError(
                    f"epsilon must be a positive finite number (or None for non-private training), "
                    f"got {self.epsilon!r}.")
        if self.delta is not None and (not isinstance(self.delta, numbers.Real) or not 0 < self.delta < 1):
            raise PrivacyBudgetError(f"delta must be in (0, 1), got {self.delta!r}; leave it None for "
                                     f"the default min(1e-5, 0.1/n_rows).")
        positive("max_grad_norm", self.max_grad_norm)
        if self.noise_multiplier is not None:
            positive("noise_multiplier", self.noise_multiplier)
        positive("max_epochs", self.max_epochs, integer=True)
        positive("batch_size", self.batch_size, integer=True)
        positive("learning_rate", self.learning_rate)
        positive("latent_dim", self.latent_dim, integer=True)
        positive("beta", self.beta)
        if not isinstance(self.hidden_dims, (list, tuple)) or not all(
                isinstance(h, numbers.Integral) and h > 0 for h in self.hidden_dims):
            raise ValueError(f"hidden_dims must be a tuple of positive integers, got {self.hidden_dims!r}.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        check_accountant(self.accountant)
        if self.preprocessing not in ("dp", "non-private"):
            raise ValueError(f"preprocessing must be 'dp' or 'non-private', got {self.preprocessing!r}.")
        for name in ("preprocessing_fraction", "marginal_fraction", "pair_fraction"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not 0 <= value < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {value!r}.")
        if self.preprocessing_fraction <= 0:
            raise ValueError("preprocessing_fraction must be > 0.")
        if not isinstance(self.oversample, numbers.Real) or self.oversample < 1:
            raise ValueError(f"oversample must be >= 1, got {self.oversample!r}.")

    # ------------------------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, output_spans: Sequence[OutputSpan] | None = None,
            preprocessing_privacy: dict | None = None):
        """Fit the synthesizer.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_rows, n_features)
            A raw table (a default :class:`~nhssynth.TableEncoder` is fitted to it, with DP
            estimates of every statistic the metadata does not declare), or an already encoded
            matrix together with ``output_spans`` (what :class:`~nhssynth.SynthesisPipeline`
            passes).
        y : ignored
        output_spans : list of OutputSpan, optional
            Layout of an encoded ``X``.
        preprocessing_privacy : dict, optional
            With an encoded ``X``: what producing it cost, as ``{"spends": [...],
            "non_private_statistics": [...]}`` (what :class:`~nhssynth.SynthesisPipeline`
            passes); spends are charged to this model's budget, and non-private statistics
            make the privacy report say the guarantee covers training only.

        Returns
        -------
        self
        """
        self._validate_params()
        seed = _seed_from(self.random_state)
        init_generator = _torch_generator(seed)  # CPU: weights and batches identical on any device
        noise_rng = self._noise_rng(seed)
        n = len(X)
        if n < 2:
            raise ValueError(f"need at least 2 rows to fit, got n_samples={n}.")
        if self.batch_size > n:
            raise ValueError(f"batch_size={self.batch_size} is larger than the data ({n} rows); "
                             f"use batch_size <= {n} (e.g. {max(1, n // 10)}).")
        budget = self._make_budget(n)
        self.non_private_statistics_ = []

        if output_spans is not None:
            self.encoder_ = None
            self._input_kind = "encoded"
            Z = np.asarray(X, dtype=np.float32)
            if Z.ndim != 2 or not np.isfinite(Z).all():
                raise ValueError("an encoded X must be a finite 2-D array.")
            spans = list(output_spans)
            value_bins = None
            self.n_features_in_ = Z.shape[1]
            self._charge_encoder(preprocessing_privacy, budget)
        else:
            Z, spans, value_bins = self._fit_encoder(X, seed, budget, noise_rng)
        self.output_spans_ = spans
        self.value_bins_ = value_bins or None
        layout = SpanLayout(spans, Z.shape[1]).to(self.device)

        self.marginals_ = None
        if budget is not None and self.marginal_fraction > 0:
            try:
                z_marg = budget.mechanism_noise_multiplier(self.marginal_fraction, 1)
            except PrivacyBudgetError:
                raise PrivacyBudgetError(
                    f"the dataset ({n} rows) is too small for epsilon={self.epsilon}: even the DP "
                    f"marginals cannot be afforded. Raise epsilon (or set marginal_fraction=0).") from None
            self.marginals_ = noisy_marginals(Z, spans, z_marg, noise_rng, value_bins)
            budget.record("marginals", "Gaussian noisy one-way histograms of every column "
                          "(used to rake samples)", history=((z_marg, 1.0, 1),),
                          noise_multiplier=z_marg)
        elif budget is None and self.marginal_fraction > 0:
            # non-private: the same pipeline with exact marginals, so private and non-private
            # fits differ only by the noise
            self.marginals_ = noisy_marginals(Z, spans, 0.0, noise_rng, value_bins)
        # two-way marginals: budgeted now (so DP-SGD noise is solved for what is left), measured
        # after training on the pairs the trained generator finds most dependent
        n_pairs, real_keys, z_pair = 0, None, 0.0
        if self.marginals_ is not None and self.pair_fraction > 0:
            n_pairs = min(len(self.marginals_) - 1, _MAX_PAIRS)
        if n_pairs > 0:
            real_keys = column_bins(Z, spans, value_bins)[0]
            if budget is not None:
                try:
                    z_pair = budget.mechanism_noise_multiplier(self.pair_fraction, 1)
                except PrivacyBudgetError:
                    raise PrivacyBudgetError(
                        f"the dataset ({n} rows) is too small for epsilon={self.epsilon}: the DP "
                        f"two-way marginals cannot be afforded. Raise epsilon (or set "
                        f"pair_fraction=0).") from None
                budget.record("pair marginals", f"Gaussian noisy two-way histograms of {n_pairs} "
                              "column pairs, chosen after training from the generator's own "
                              "draws (used to rake samples)", history=((z_pair, 1.0, 1),),
                              noise_multiplier=z_pair, n_pairs=n_pairs)
        dp = self._plan_training(n, budget)

        torch_threads = torch.get_num_threads()
        network = VAENetwork(Z.shape[1], layout.n_continuous, self.latent_dim, self.hidden_dims)
        network.reset_parameters(init_generator)
        if self.marginals_ is not None:
            # start from the released marginals: DP-SGD steps go to the relationships instead
            # of rediscovering each column's distribution (flchain, epsilon 1: +0.002 overall)
            with torch.no_grad():
                network.decoder.layers[-1].bias[:Z.shape[1]] = torch.from_numpy(
                    decoder_bias(spans, self.marginals_, Z.shape[1], value_bins).astype(np.float32))
                # continuous scale: one sd of a normal mode (scalar = (x - mu) / 4 sd), so the
                # first draws cover every value bin the raking may need
                network.decoder.layers[-1].bias[Z.shape[1]:] = _INITIAL_RAW_LOG_SCALE
        network.to(self.device)
        generator = _torch_generator(None if seed is None else seed + 1, self.device)
        X_t = torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32)).to(self.device)
        del Z
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.max_epochs, desc="DPVAE", unit="epoch")

        def on_epoch(record):
            if bar is not None:
                post = {"loss": f"{record['loss']:.3f}"}
                if "epsilon" in record:
                    post["eps"] = f"{record['epsilon']:.3f}"
                bar.set_postfix(post)
                bar.update(1)
        try:
            history = train_vae(network, X_t, layout, epochs=self.max_epochs,
                                batch_size=self.batch_size, learning_rate=self.learning_rate,
                                beta=self.beta, weight_decay=self.weight_decay,
                                generator=generator, dp=dp, on_epoch=on_epoch,
                                sampling_generator=self._batch_generator(init_generator))
        finally:
            if bar is not None:
                bar.close()
            torch.set_num_threads(torch_threads)
        del X_t
        network.eval()
        self.network_ = network
        self.history_ = history
        self.rake_factors_ = None
        self.pair_marginals_ = None
        self.quantile_maps_ = None
        if self.marginals_ is not None:
            # raking factors from one large prior draw (post-processing of DP outputs), reused
            # by every sample() call: no iterations at sampling time
            pool_rng = np.random.default_rng(None if seed is None else seed + 2)
            pool = self._decode_prior(int(np.clip(20 * n, *_RAKE_POOL)), pool_rng)
            if _QUANTILE_MATCHING and value_bins and self.encoder_ is not None:
                self.quantile_maps_ = fit_quantile_maps(pool, spans, self.marginals_, value_bins)
                apply_quantile_maps(pool, spans, self.quantile_maps_, value_bins,
                                    self.encoder_.column_encoders_, pool_rng)
            pairs = None
            if real_keys is not None:
                groups = coarse_groups(spans, self.marginals_, value_bins)
                chosen = select_pairs(column_bins(pool, spans, value_bins)[0], groups, n_pairs)
                pairs = noisy_pair_marginals(real_keys, chosen, groups, self.marginals_, z_pair,
                                             noise_rng)
            self.pair_marginals_ = pairs or None
            self.rake_factors_ = rake_factors(pool, spans, self.marginals_, value_bins=value_bins,
                                              pairs=self.pair_marginals_)
            del pool
        del real_keys
        self.n_epochs_ = len(history)
        self.n_steps_ = history[-1]["steps"] if history else 0
        if budget is not None:
            budget.record("training", "DP-SGD (Poisson-subsampled Gaussian, per-sample clipping)",
                          history=((dp.noise_multiplier, dp.sample_rate, self.n_steps_),),
                          noise_multiplier=dp.noise_multiplier, sample_rate=dp.sample_rate,
                          steps=self.n_steps_, max_grad_norm=dp.max_grad_norm)
            self.privacy_ledger_ = budget.report()
            self.epsilon_ = float(self.privacy_ledger_["epsilon"])
            self.delta_ = float(self.privacy_ledger_["delta"])
            if self.epsilon_ > self.epsilon * (1 + 1e-9):  # bug guard: never report more than promised
                raise PrivacyBudgetError(
                    f"internal error: spent epsilon {self.epsilon_} exceeds the budget {self.epsilon}.")
            self.sample_rate_ = dp.sample_rate
            self.noise_multiplier_ = dp.noise_multiplier
        else:
            self.privacy_ledger_ = None
            self.epsilon_ = math.inf
            self.delta_ = 0.0
            self.sample_rate_ = self.batch_size / n
            self.noise_multiplier_ = 0.0
        logger.info("fitted DPVAESynthesizer: %d epochs, %d steps, epsilon_=%.4g, delta_=%.3g",
                    self.n_epochs_, self.n_steps_, self.epsilon_, self.delta_)
        return self

    # -- fit helpers -------------------------------------------------------------------------
    def _batch_generator(self, init_generator: torch.Generator) -> torch.Generator:
        """Poisson batch sampler: seeded, or in secure mode from OS entropy (which rows are in a
        batch must stay secret for the subsampling amplification the accountant assumes)."""
        if not self.secure_mode:
            return init_generator
        return _torch_generator(int.from_bytes(os.urandom(8), "little") % (2**63))

    def _noise_rng(self, seed):
        if self.secure_mode:
            return _SecureNumpyLike(SecureGaussian())
        return np.random.default_rng(None if seed is None else seed + 7919)

    def _make_budget(self, n: int) -> PrivacyBudget | None:
        if self.epsilon is None:
            if not self.allow_non_private:
                warnings.warn("epsilon=None: training WITHOUT differential privacy; the synthetic data "
                              "carries no formal privacy guarantee. Pass allow_non_private=True to "
                              "acknowledge.", NonPrivateOperationWarning, stacklevel=3)
            return None
        delta = self.delta if self.delta is not None else min(1e-5, 0.1 / n)
        if delta >= 1.0 / n:
            raise PrivacyBudgetError(
                f"delta={delta:g} is not below 1/n_rows={1.0 / n:.3g}: a mechanism that publishes one "
                f"random row would satisfy it. Use delta <= {0.1 / n:.2g} (or leave it None).")
        if delta > 0.1 / n:
            warnings.warn(f"delta={delta:g} is close to 1/n_rows={1.0 / n:.3g}; consider <= {0.1 / n:.2g}.",
                          PrivacyWarning, stacklevel=3)
        return PrivacyBudget(float(self.epsilon), float(delta), self.accountant,
                             self.preprocessing_fraction)

    def _fit_encoder(self, X, seed, budget: PrivacyBudget | None, noise_rng):
        if isinstance(X, pd.DataFrame):
            frame = X
            self._input_kind = "dataframe"
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        else:
            arr = _as_2d_numeric(X)
            frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
            self._input_kind = "array"
        self.n_features_in_ = frame.shape[1]
        metadata = as_metadata(self.metadata, frame)
        metadata.validate(frame)
        params = dict(self.encoder_params or {})
        domains = None
        histograms: dict = {}
        if budget is not None:
            # Under DP, fewer mixture modes: a narrower encoded table (less noise per useful
            # weight) and no modes fitted to histogram noise.  flchain, epsilon 1, five seeds:
            # overall fidelity 0.872 with 5 modes vs 0.843 with 10.
            params.setdefault("gmm_components", _DP_GMM_COMPONENTS)
        if budget is not None and self.preprocessing == "dp":
            if params.get("categorical_min_frequency") is not None:
                raise PrivacyBudgetError("categorical_min_frequency reads category frequencies from the "
                                         "data; it cannot be combined with DP preprocessing.")
            try:
                domains, metadata, histograms = dp_preprocess(frame, metadata, budget, noise_rng,
                                                              return_histograms=True)
            except PrivacyBudgetError as exc:
                raise PrivacyBudgetError(f"DP preprocessing: {exc} (declare categories and min/max in "
                                         f"the metadata to spend less on preprocessing).") from None
            if any("categories" in d for d in domains.values()):
                # rows whose value was too rare to be released encode as "no category"
                params.setdefault("handle_unknown", "ignore")
            if any(c.kind == "datetime" for c in metadata):
                params.setdefault("datetime_method", "minmax")  # no data-fitted mixture for dates
        elif budget is not None:
            self.non_private_statistics_ = data_statistics(metadata)
            if self.non_private_statistics_:
                warnings.warn(
                    "preprocessing='non-private': "
                    f"{len(self.non_private_statistics_)} statistic(s) (category sets, bounds, "
                    "mixture fits) are read from the data WITHOUT differential privacy; the "
                    "reported epsilon covers model training only.", NonPrivateOperationWarning,
                    stacklevel=3)
        encoder = TableEncoder(metadata=metadata, random_state=seed, domains=domains, **params)
        Z = encoder.fit_transform(frame)
        if domains is not None:  # keep no data-derived category list/bounds (nor save them)
            publish_encoder_metadata(encoder, domains)
        self.encoder_ = encoder
        if budget is None or self.preprocessing == "non-private":
            # the same value bins from exact histograms (listed in non_private_statistics_
            # with preprocessing="non-private"), so fits differ only by the noise
            histograms = _exact_histograms(frame, metadata, encoder)
        value_bins = _value_bins(encoder, metadata, histograms)
        return Z, list(encoder.output_spans_), value_bins

    def _charge_encoder(self, summary: dict | None, budget: PrivacyBudget | None) -> None:
        """Record what an external encoder's preprocessing cost (pipeline mode)."""
        if summary is None:
            return
        self.non_private_statistics_ = list(summary.get("non_private_statistics", []))
        if budget is not None:
            for spend in summary.get("spends", []):
                budget.record(spend["stage"], spend["mechanism"],
                              history=tuple(tuple(h) for h in spend.get("history", ())),
                              delta_extra=spend.get("delta_extra", 0.0))
            if self.non_private_statistics_:
                warnings.warn("the encoder read statistics from the data WITHOUT differential privacy; "
                              "the reported epsilon covers model training only.",
                              NonPrivateOperationWarning, stacklevel=3)

    def _plan_training(self, n: int, budget: PrivacyBudget | None) -> DPSettings | None:
        if budget is None:
            return None
        sample_rate = self.batch_size / n
        steps = self.max_epochs * max(1, round(1.0 / sample_rate))
        if self.noise_multiplier is None:
            try:
                sigma = budget.training_noise_multiplier(sample_rate, steps)
            except PrivacyBudgetError as exc:
                raise PrivacyBudgetError(
                    f"the dataset ({n} rows) is too small for epsilon={self.epsilon} with "
                    f"batch_size={self.batch_size} and max_epochs={self.max_epochs}: {exc} "
                    f"Lower batch_size or max_epochs, or raise epsilon.") from None
        else:
            sigma = float(self.noise_multiplier)
            spent = budget.epsilon_with(((sigma, sample_rate, steps),))
            if spent > budget.epsilon:
                raise PrivacyBudgetError(
                    f"noise_multiplier={sigma} over {steps} steps brings the total epsilon to "
                    f"{spent:.4g} > the budget {budget.epsilon}; raise noise_multiplier, lower "
                    f"max_epochs, or leave noise_multiplier=None to solve for it.")
        if sigma > 50:
            warnings.warn(f"noise_multiplier={sigma:.3g} is very large: with {n} rows, epsilon="
                          f"{self.epsilon} leaves little signal. Expect poor fidelity; fewer epochs or "
                          f"more data help.", PrivacyWarning, stacklevel=3)
        return DPSettings(noise_multiplier=sigma, max_grad_norm=float(self.max_grad_norm),
                          sample_rate=sample_rate, delta=budget.delta - budget.delta_extra,
                          accountant=self.accountant, secure_mode=bool(self.secure_mode),
                          prior=budget.history)

    # ------------------------------------------------------------------------------------
    # sampling
    # ------------------------------------------------------------------------------------
    def sample_encoded(self, n_samples: int, *, random_state: Any = None) -> np.ndarray:
        """Draw ``n_samples`` rows in the *encoded* space (one-hot/binary blocks sampled)."""
        check_is_fitted(self, "network_")
        n_samples = check_n_samples(n_samples)
        rng = np.random.default_rng(_seed_from(random_state))
        if getattr(self, "rake_factors_", None) is None:
            return self._decode_prior(n_samples, rng)
        # raked in chunks: memory stays bounded (oversample x chunk candidates) and every
        # chunk matches the released marginals on its own
        parts = []
        chunk = max(1_000, int(_RAKE_CELLS / (self.oversample * self.network_.n_features)))
        for start in range(0, n_samples, chunk):
            m = min(chunk, n_samples - start)
            candidates = self._draw(int(math.ceil(self.oversample * m)), rng)
            keep = rake_select(candidates, self.output_spans_, self.rake_factors_, m, rng,
                               value_bins=self.value_bins_, pairs=self.pair_marginals_)
            parts.append(candidates[rng.permutation(keep)])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _draw(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Decode ``n_samples`` prior draws and quantile-match the value-binned numeric columns
        onto their released marginals (post-processing)."""
        Z = self._decode_prior(n_samples, rng)
        if getattr(self, "quantile_maps_", None):
            apply_quantile_maps(Z, self.output_spans_, self.quantile_maps_, self.value_bins_,
                                self.encoder_.column_encoders_, rng)
        return Z

    def _decode_prior(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Decode ``n_samples`` latent draws from the prior N(0, I)."""
        layout = SpanLayout(self.output_spans_, self.network_.n_features)
        out = np.empty((n_samples, layout.n_features), dtype=np.float32)
        net = self.network_
        with torch.no_grad():
            for start in range(0, n_samples, _SAMPLE_CHUNK):
                m = min(_SAMPLE_CHUNK, n_samples - start)
                z = torch.from_numpy(rng.standard_normal((m, net.latent_dim)).astype(np.float32))
                logits, raw_log_scale = net.decode(z.to(self.device))
                logits = logits.cpu()
                block = out[start:start + m]
                block[:] = 0.0
                if layout.n_continuous:
                    mean = logits[:, layout.continuous].numpy()
                    scale = np.exp(squash_log_scale(raw_log_scale.cpu()).numpy())
                    value = mean + scale * rng.standard_normal(mean.shape).astype(np.float32)
                    block[:, layout.continuous.numpy()] = np.clip(value, -1.0, 1.0)
                if layout.softmax_index.shape[0]:
                    g = layout.group_logits(logits).numpy()
                    # Gumbel-max (argmax of logits + Gumbel noise) is a draw from the softmax;
                    # -log(E), E ~ Exp(1), is Gumbel noise with one log instead of two
                    e = rng.standard_exponential(size=g.shape, dtype=np.float32)
                    np.maximum(e, np.float32(1e-30), out=e)  # float32 draws can be exactly 0
                    choice = np.argmax(g - np.log(e), axis=2)
                    cols = layout.softmax_index.numpy()[np.arange(g.shape[1])[None, :], choice]
                    block[np.arange(m)[:, None], cols] = 1.0
                if len(layout.binary):
                    p = torch.sigmoid(logits[:, layout.binary]).numpy()
                    block[:, layout.binary.numpy()] = (rng.uniform(size=p.shape) < p).astype(np.float32)
        return out

    def sample(self, n_samples: int, *, random_state: Any = None):
        """Generate ``n_samples`` synthetic rows.

        Parameters
        ----------
        n_samples : int
            Number of rows (a positive integer).
        random_state : int, RandomState, Generator or None
            Seed of this draw; the same seed gives the same rows.  The estimator is not changed.

        Returns
        -------
        DataFrame or ndarray
            A DataFrame with the original columns, dtypes, categories and missing values when
            fitted on a DataFrame; an ndarray when fitted on an array (encoded rows when fitted
            inside a :class:`~nhssynth.SynthesisPipeline`).
        """
        Z = self.sample_encoded(n_samples, random_state=random_state)
        if self.encoder_ is None:
            return Z
        frame = self.encoder_.inverse_transform(Z)
        if self._input_kind == "array":
            return frame.to_numpy(dtype=np.float64)
        return frame

    def score_samples(self, X) -> np.ndarray:
        """Evidence lower bound (ELBO) of each row under the model; higher = more typical.

        Uses the posterior mean (no sampling), so scores are deterministic.  Used by
        :func:`nhssynth.privacy.audit` as a white-box membership score.
        """
        check_is_fitted(self, "network_")
        if self.encoder_ is not None:
            frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(
                _as_2d_numeric(X, min_samples=1), columns=[f"x{i}" for i in range(self.n_features_in_)])
            Z = self.encoder_.transform(frame)
        else:
            Z = np.asarray(X, dtype=np.float32)
        layout = SpanLayout(self.output_spans_, self.network_.n_features).to(self.device)
        # float64 copy: scores must not depend on how rows are batched (BLAS blocking in float32)
        net = copy.deepcopy(self.network_).double()
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float64)).to(self.device)
            mu, logvar = net.encode(x)
            out, raw = net.decode(mu)
            loss = reconstruction_loss(x, out, raw, layout) + kl_divergence(mu, logvar)
        return -loss.cpu().numpy().astype(np.float64)

    # ------------------------------------------------------------------------------------
    # privacy report, persistence, sklearn tags
    # ------------------------------------------------------------------------------------
    def privacy_report(self) -> dict:
        """What the fitted model's guarantee covers: total (epsilon, delta) and every spend.

        Returns
        -------
        dict
            ``private``, ``epsilon``, ``delta``, ``epsilon_budget``, ``accountant``,
            ``covers_preprocessing``, ``non_private_statistics``, ``spends`` (stage, mechanism,
            epsilon on its own, noise multiplier...), ``composition`` and a one-sentence
            ``statement``.
        """
        check_is_fitted(self, "network_")
        private = self.epsilon is not None
        ledger = self.privacy_ledger_ or {}
        leaks = list(self.non_private_statistics_)
        if not private:
            statement = "No differential privacy: the model was trained with epsilon=None."
        elif leaks:
            statement = (f"Model training is ({self.epsilon_:.3g}, {self.delta_:.2g})-differentially "
                         f"private, but {len(leaks)} preprocessing statistic(s) were read from the data "
                         f"without DP, so the guarantee does not cover them.")
        else:
            statement = (f"Everything learnt from the training table is ({self.epsilon_:.3g}, "
                         f"{self.delta_:.2g})-differentially private: adding or removing any one "
                         f"person's row changes the probability of any output by at most a factor "
                         f"e^{self.epsilon_:.3g} (plus {self.delta_:.2g}).")
        return {"private": private, "epsilon": self.epsilon_ if private else None,
                "delta": self.delta_ if private else None, "epsilon_budget": self.epsilon,
                "accountant": self.accountant if private else None,
                "composition": ledger.get("composition"),
                "noise_multiplier": self.noise_multiplier_, "sample_rate": self.sample_rate_,
                "steps": self.n_steps_, "max_grad_norm": self.max_grad_norm,
                "secure_mode": bool(self.secure_mode),
                "covers_preprocessing": private and not leaks,
                "non_private_statistics": leaks, "spends": list(ledger.get("spends", [])),
                "statement": statement}

    def save(self, path) -> None:
        """Save to a directory (weights via ``state_dict``, params/metadata as JSON)."""
        save_synthesizer(self, path)

    @classmethod
    def load(cls, path) -> "DPVAESynthesizer":
        """Load a synthesizer saved with :meth:`save` (safe: ``weights_only=True``)."""
        return load_synthesizer(path, cls)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = bool(self.secure_mode)
        tags.input_tags.allow_nan = True
        return tags


def _as_2d_numeric(X, min_samples: int = 2) -> np.ndarray:
    from sklearn.utils.validation import check_array
    try:
        return check_array(X, dtype=np.float64, ensure_all_finite="allow-nan",
                           ensure_min_samples=min_samples)
    except ValueError as exc:
        raise ValueError(f"DPVAESynthesizer.fit: {exc}") from None

