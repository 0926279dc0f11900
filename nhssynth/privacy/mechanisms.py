"""Differential-privacy primitives on histograms: one copy for every release.

* :func:`project_counts`: noisy counts onto the closest non-negative vector with a given total
  (post-processing that removes the positive bias clipping at zero would leave);
* :func:`log_bin_edges`, :func:`coarse_counts`, :func:`search_bounds`: a column's range from
  noisy counts in data-independent signed power-of-two bins, grown from a core outwards;
* :func:`histogram_edges`, :func:`zoom_range`, :func:`spread_beyond`: the bins of a column's
  histogram inside its range, and the zoom onto an under-resolved core.

The Gaussian noise itself is added where the counts are made (each release is one Gaussian
mechanism: one count per row and column); :mod:`nhssynth.encoders.domain` puts these
together into the domain release, and :mod:`nhssynth.privacy.accounting` accounts for them.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

__all__ = ["LOG_BIN_RANGE", "project_counts", "log_bin_edges", "coarse_counts", "search_bounds",
           "histogram_edges", "zoom_range", "spread_beyond"]

LOG_BIN_RANGE = (-20, 64)  # powers of two covered by the coarse bound search
_TAIL_WINDOW = 8  # longest run of coarse bins beyond a bound summed in one tail test
_ZOOM_MAX_CORE = 3  # stage-B bins: a core this narrow is under-resolved (see zoom_range)
_SPIKE_SHARE = 0.8  # of the cleared mass in one bin: zoomed on whatever the core (a spike)


def project_counts(noisy: np.ndarray, total: float) -> np.ndarray:
    """Closest non-negative vector summing to ``total`` (Euclidean projection onto the
    scaled simplex): subtract one constant from every count and clip at zero.

    Clipping noisy counts at zero alone gives every empty or rare bin a positive bias of about
    ``0.4 sigma``, which with many bins moves real mass onto values that barely occur; the
    projection ("norm-sub") removes that bias where it matters.  Post-processing: no privacy cost.
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    if total <= 0 or noisy.size == 0:
        return np.zeros_like(noisy)
    desc = np.sort(noisy)[::-1]
    cums = np.cumsum(desc) - total
    # the largest k with desc[k] > shift_k; k = 0 always qualifies (desc[0] - cums[0] = total)
    k = np.nonzero(desc - cums / np.arange(1, desc.size + 1) > 0)[0][-1]
    shift = cums[k] / (k + 1)
    return np.maximum(noisy - shift, 0.0)


def log_bin_edges() -> np.ndarray:
    """Edges of the data-independent signed power-of-two bins ``±[2^k, 2^(k+1))``."""
    k = np.arange(LOG_BIN_RANGE[0], LOG_BIN_RANGE[1] + 1, dtype=np.float64)
    pos = 2.0 ** k
    return np.concatenate([-pos[::-1], [0.0], pos])  # monotone edges, symmetric around 0


def coarse_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins of ``edges`` (values beyond them in the outer bins)."""
    v = np.clip(values, edges[0], edges[-1])
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)


def zoom_range(edges: np.ndarray, noisy: np.ndarray, tau: float, bounds: tuple[float, float], *,
               integer: bool, max_core: int = _ZOOM_MAX_CORE, step: float | None = None,
               n_bins: int | None = None) -> tuple[float, float] | None:
    """Range to histogram again at finer resolution, or ``None`` when zooming would not help.

    The core is the run of bins whose noisy count clears ``tau`` (a lone cleared bin with
    under a tenth of the cleared mass is taken for noise).  Zooming only pays when that core
    is a few bins (``max_core``) — the data sits inside one or two coarse bins, like years in a
    power-of-two range.  A wider core is already resolved, and its thin tails sit in bins that
    do not clear ``tau``: a range cut to the core would pile them onto its edges -- unless one
    bin holds ``_SPIKE_SHARE`` of the cleared mass (a spike: a larger budget lets a thin
    tail's bins clear ``tau`` around it), which is zoomed on alone.  The zoomed range adds two
    bins of margin each side and must shrink the range by half.

    Values on a grid of ``step`` (integers, a column's decimals) get less margin (one bin, or
    none) when that lets the ``n_bins`` bins of the zoom hold one grid value each
    (:func:`histogram_edges`): a spike on one value (93 % of covid_testing's ct_result at
    45.00) then stays on it, where bins of five values drew it over 44.97-45.01.  What lies
    beyond the zoom is kept either way (:func:`spread_beyond`)."""
    cleared = np.flatnonzero(noisy > tau)
    if not cleared.size:
        return None
    total = float(noisy[cleared].sum())
    near = np.abs(cleared[:, None] - cleared[None, :]) == 1
    core = cleared[near.any(axis=1) | (noisy[cleared] >= 0.1 * total)]
    if core.size and core[-1] - core[0] + 1 > max_core:
        # a resolved core around a spike: at a larger budget a thin tail's bins clear tau and
        # widen the core, but one bin holding most of the rows (covid_testing's ct_result, 93 %
        # at 45.00; adult's capital_gain, 92 % at 0) still needs the zoom, or the spike is drawn
        # evenly over its bin (ct_result over 44.75-45.25 at eps=10, its KS complement 0.54)
        fullest = int(cleared[np.argmax(noisy[cleared])])
        core = np.array([fullest]) if noisy[fullest] >= _SPIKE_SHARE * total else core
    if not core.size or core[-1] - core[0] + 1 > max_core:
        return None
    grid = 1.0 if integer else step
    for margin in (2, 1, 0):
        lo = float(edges[max(core[0] - margin, 0)])
        hi = float(edges[min(core[-1] + 1 + margin, len(edges) - 1)])
        if integer:
            lo, hi = float(math.floor(lo)), float(math.ceil(hi))
        if grid is None or n_bins is None or (hi - lo) / grid + 2 <= 2 * n_bins:
            break
    else:  # no margin gives one value a bin: the usual two
        lo = float(edges[max(core[0] - 2, 0)])
        hi = float(edges[min(core[-1] + 3, len(edges) - 1)])
    if hi - lo >= 0.5 * (bounds[1] - bounds[0]):
        return None
    return max(lo, bounds[0]), min(hi, bounds[1])


_CORE_FALSE = 1e-3  # chance that noise alone makes some empty power-of-two bin the core
_SECOND_FALSE = 1e-5  # the same for the other signed part, once one part is found
_STEP_FALSE = 1e-4  # per side: chance that noise alone extends a bound by one more bin
_WINDOWS = (2, 4)  # runs of adjacent bins of the second look (a factor 16 at most)


def search_bounds(noisy: np.ndarray, sigma: float) -> tuple[int, int] | None:
    """First and last bin of a column's range from noisy counts in the bins of
    :func:`log_bin_edges`, or None.

    The negative values, the values near zero (the two bins around 0) and the positive values
    are searched separately (a spike of zeros must not hide values in the hundreds, as in a
    count of days or a capital gain), and the range covers every part found.  The signed part
    with the fuller bin is searched at a third of the false-positive rates below, the other at
    ``_SECOND_FALSE`` (a range from -500 to 10^14 needs noise to fake a whole part).  Within a signed part the range grows from a *core*
    outwards, so a lone bin far from the data that clears the noise by chance cannot stretch it:

    1. the core is the fullest bin, if it clears the noise maximum of the part's bins (a chance
       of ``_CORE_FALSE`` that an empty bin would); otherwise the fullest run of 2, 4 or 8
       adjacent bins whose sum clears the same test for sums (a wider but sane range: the
       second look, post-processing of the same counts); otherwise the part is absent;
    2. each side then takes the next bin while it clears a one-sided test (a false step needs
       the first empty bin beyond the data to pass: ``_STEP_FALSE``), and then extends over the
       most significant window of up to 8 bins beyond the bound if its sum clears a test at
       ``_STEP_FALSE`` (thin tails spread over several bins, e.g. follow-up days 3-2029).
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    middle = noisy.size // 2  # bins middle - 1 and middle hold [-2^-20, 0) and [0, 2^-20)
    parts = [(0, middle - 1), (middle + 1, noisy.size)]
    # the part with the fuller bin is searched first; the other must then pass a stricter
    # test (data on both sides of zero is rarer than noise far out on the empty side)
    parts.sort(key=lambda p: -float(noisy[p[0]:p[1]].max(initial=-np.inf)))
    found = []
    for (start, stop), false_rate in zip(parts, (_CORE_FALSE, _SECOND_FALSE)):
        part = _search_part(noisy[start:stop], sigma, 3.0 * _CORE_FALSE / false_rate)
        if part is not None:
            found += [start + part[0], start + part[1]]
    z_zero = float(ndtri(1.0 - _CORE_FALSE / 6.0))
    found += [i for i in (middle - 1, middle) if noisy[i] > sigma * z_zero]
    if not found:
        return None
    return min(found), max(found)


def _search_part(noisy: np.ndarray, sigma: float, tests: float) -> tuple[int, int] | None:
    """Core-and-extend range search of :func:`search_bounds` inside one signed part
    (false-positive rates divided by ``tests``)."""
    k = noisy.size
    if k == 0:
        return None
    z_core = float(ndtri(1.0 - _CORE_FALSE / (tests * k)))
    core = int(np.argmax(noisy))
    if noisy[core] > sigma * z_core:
        first = last = core
    else:
        z_window = float(ndtri(1.0 - _CORE_FALSE / (tests * k * len(_WINDOWS))))
        for w in _WINDOWS:
            sums = np.convolve(noisy, np.ones(w), mode="valid")
            if not sums.size:
                return None
            start = int(np.argmax(sums))
            if sums[start] > sigma * math.sqrt(w) * z_window:
                first, last = start, start + w - 1
                break
        else:
            return None
    z_step = float(ndtri(1.0 - _STEP_FALSE / tests))
    while first > 0 and noisy[first - 1] > sigma * z_step:
        first -= 1
    while last < k - 1 and noisy[last + 1] > sigma * z_step:
        last += 1
    z_window = float(ndtri(1.0 - _STEP_FALSE / (tests * _TAIL_WINDOW)))
    first = _window_extend(noisy[:first][::-1], sigma, z_window, first, -1)
    last = _window_extend(noisy[last + 1:], sigma, z_window, last, +1)
    return first, last


def _window_extend(beyond: np.ndarray, sigma: float, z: float, index: int, step: int) -> int:
    """``index`` moved ``step``-wards to the end of the most significant window (at most
    ``_TAIL_WINDOW`` bins) of ``beyond`` (noisy counts outward from the bound, nearest first),
    when that window's sum clears ``z`` standard deviations of its noise."""
    window = beyond[:_TAIL_WINDOW]
    if not window.size:
        return index
    stat = np.cumsum(window) / (sigma * np.sqrt(np.arange(1, window.size + 1)))
    best = int(np.argmax(stat))
    return index + step * (best + 1) if stat[best] > z else index


def histogram_edges(lo: float, hi: float, n_bins: int, *, integer: bool = False,
                    step: float | None = None) -> np.ndarray:
    """Bin edges over ``[lo, hi]``.

    Values on a grid (integers: ``step`` 1; a column with ``d`` decimals: ``step`` 10^-d) get
    bins of whole grid steps centred on the grid points, as many steps per bin as keep the
    range within about ``n_bins`` bins (at most ``4 n_bins`` single steps): a bin never splits
    the values it holds from their grid neighbours, so a one-decimal lab value's histogram has
    no empty bins between its values.  Other values get ``n_bins`` equal bins."""
    if integer:
        step = 1.0
    if hi <= lo:
        hi = lo + (step or 1.0)
    if step:
        first = math.floor(lo / step + 1e-9)
        span = math.ceil(hi / step - 1e-9) - first + 1  # grid points in the range
        if span <= 4 * n_bins:
            width = 1 if span <= 2 * n_bins else math.ceil(span / n_bins)
            return step * (first - 0.5 + width * np.arange(math.ceil(span / width) + 1,
                                                            dtype=np.float64))
        width = math.ceil(span / n_bins)
        return step * (first - 0.5 + width * np.arange(math.ceil(span / width) + 1,
                                                        dtype=np.float64))
    return np.linspace(lo, hi, n_bins + 1)


def spread_beyond(edges_b: np.ndarray, noisy_b: np.ndarray, edges_c: np.ndarray,
                  beyond: tuple[float, float], threshold: float):
    """What lies beyond a zoomed range ``edges_c``: each side's noisy count spread over the
    first histogram's bins on that side (those starting below ``edges_c[0]`` / ending above
    ``edges_c[-1]``) in proportion to their clipped counts, those bins merged, from the zoom
    outwards, into runs that each carry at least ``threshold`` (a count that clears the
    noise; the last run joins the one before when it falls short).  Spread bin by bin, a thin
    real tail (covid_testing's ct_result: 7 % of the rows over 14-45 beside 93 % at 45) became
    bins of a few rows each, which the projection onto non-negative counts emptied, cutting
    the tail.  A count that does not clear ``threshold`` is one bin, not occupied.  Returns,
    per side, ``(edges, counts, occupied)`` of the spread bins, edges clipped to the zoomed
    range so that the merged edges increase.  Post-processing of the two releases."""
    out = []
    for side, count in (("below", beyond[0]), ("above", beyond[1])):
        if side == "below":
            mask = edges_b[:-1] < edges_c[0]
            e = np.append(edges_b[:-1][mask], edges_c[0]) if mask.any() else np.zeros(0)
        else:
            mask = edges_b[1:] > edges_c[-1]
            e = np.insert(edges_b[1:][mask], 0, edges_c[-1]) if mask.any() else np.zeros(0)
        if not mask.any():
            out.append((e, np.zeros(0), np.zeros(0, dtype=bool)))
            continue
        count = max(float(count), 0.0)
        if count <= threshold:  # noise-level: one bin, not occupied
            out.append((e[[0, -1]], np.array([count]), np.zeros(1, dtype=bool)))
            continue
        shape = np.clip(noisy_b[mask], 0.0, None)
        if shape.sum() <= 0:
            shape = np.ones(int(mask.sum()))
        spread = count * shape / shape.sum()
        # runs from the zoom outwards (below: from the last bin down)
        order = np.arange(spread.size)[::-1] if side == "below" else np.arange(spread.size)
        runs, run, acc = [], [], 0.0
        for i in order:
            run.append(int(i))
            acc += spread[i]
            if acc >= threshold:
                runs.append(run)
                run, acc = [], 0.0
        if run:
            if runs:
                runs[-1].extend(run)
            else:
                runs.append(run)
        runs = sorted((sorted(r) for r in runs), key=lambda r: r[0])
        cuts = np.array([r[0] for r in runs] + [spread.size])
        counts = np.array([float(spread[r].sum()) for r in runs])
        out.append((e[cuts], counts, counts > 0))
    return out
