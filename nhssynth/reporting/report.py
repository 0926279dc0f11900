"""A self-contained HTML report (one file, images inlined, no external requests) for an
information governance board: dataset summary, privacy statement, metric tables with
baselines, plots and plain-language explanations."""
from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .._version import __version__
from ..metrics.evaluation import METRIC_INFO, EvaluationResult
from .plots import (figure_to_bytes, plot_correlation_difference, plot_dcr, plot_epsilon_curve,
                    plot_marginals)

__all__ = ["write_report", "render_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1rem}
h1{border-bottom:3px solid #005eb8;padding-bottom:.3rem;color:#003087}
h2{color:#005eb8;margin-top:2.2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#eef3fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.good{background:#e5f5e0}.bad{background:#fde0dd}.note{color:#555;font-size:.9rem}
.box{border-left:5px solid #005eb8;background:#f4f8fc;padding:.6rem 1rem;margin:1rem 0}
.warn{border-left-color:#d5281b;background:#fdf2f1}
img{max-width:100%;height:auto;border:1px solid #ddd;margin:.4rem 0}
dt{font-weight:600;margin-top:.5rem}
"""

_HEADLINE = ["quality", "fidelity", "column_shapes", "column_pair_trends", "relationships",
             "missing_similarity", "coverage", "detection", "utility", "privacy", "dcr_share",
             "exact_copy_rate", "nndr", "membership_inference"]


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, (float, np.floating)):
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "∞"
        return f"{x:.{digits}f}"
    return _e(x)


def _img(fig) -> str:
    data = base64.b64encode(figure_to_bytes(fig, "png", dpi=90)).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, numeric: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for c, v in zip(frame.columns, row):
            cls = ' class="num"' if c in numeric else ""
            cells.append(f"<td{cls}>{_fmt(v) if c in numeric else _e(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _privacy_section(res: EvaluationResult) -> str:
    p = res.privacy
    if not p:
        return ('<div class="box warn"><b>Privacy guarantee: unknown.</b> No privacy report was '
                'given for this synthetic data and the generator did not provide one, so no '
                'differential-privacy guarantee can be stated. Treat the synthetic data as '
                'potentially identifiable until a guarantee is documented.</div>')
    eps, delta = p.get("epsilon"), p.get("delta")
    private = p.get("private", eps is not None and _finite(eps))
    parts = []
    if eps is None or not _finite(eps):
        parts.append('<div class="box warn"><b>No differential-privacy guarantee</b> '
                     f'(epsilon = {_fmt(eps if eps is not None else float("inf"))}).</div>')
    else:
        cls = "box" if private else "box warn"
        parts.append(
            f'<div class="{cls}"><b>Differential privacy: (ε = {_fmt(float(eps))}, δ = '
            f'{_fmt(float(delta or 0.0), 8 if delta else 1)})</b>, accountant: '
            f'{_e(p.get("accountant") or "not stated")}'
            + (f', neighbouring datasets: {_e(p["neighbouring"])}' if p.get("neighbouring") else "")
            + ". In words: whether or not any one person's record was in the training data "
              "changes the probability of any output of the generator by at most a factor "
              f"e<sup>ε</sup> ≈ {_fmt(math.exp(min(float(eps), 50.0)), 2)}"
            + (", except with probability δ" if delta else "") + ".</div>")
    if p.get("statement"):
        parts.append(f"<p>{_e(p['statement'])}</p>")
    spends = p.get("spends") or []
    if spends:
        frame = pd.DataFrame([{"stage": s.get("stage"), "epsilon": float(s.get("epsilon", float("nan"))),
                               "delta": float(s.get("delta", 0.0) or 0.0),
                               "mechanism": s.get("mechanism", "")} for s in spends])
        tab = _table(frame, numeric=["epsilon", "delta"])
        if len(frame) > 10:
            tab = f"<details><summary>{len(frame)} releases (click to expand)</summary>{tab}</details>"
        parts.append("<p>Where the budget was spent (including preprocessing):</p>" + tab)
    non_private = p.get("non_private_statistics") or []
    if non_private:
        parts.append('<div class="box warn"><b>Computed from the real data without differential '
                      'privacy:</b><ul>' + "".join(f"<li>{_e(x)}</li>" for x in non_private)
                     + "</ul></div>")
    return "".join(parts)


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _dataset_section(res: EvaluationResult) -> str:
    md, real = res.metadata, res.real
    kinds = pd.Series([c.kind for c in md.columns]).value_counts()
    rows = [("real training rows", len(real) if real is not None else "–"),
            ("real holdout rows", len(res.holdout) if res.holdout is not None else "none given"),
            ("synthetic rows", len(res.synthetic) if res.synthetic is not None else "–"),
            ("columns", len(md)),
            ("column kinds", ", ".join(f"{k}: {v}" for k, v in kinds.items())),
            ("target column (utility)", res.target or "none")]
    out = "<table>" + "".join(f"<tr><th>{_e(a)}</th><td>{_e(b)}</td></tr>" for a, b in rows) + "</table>"
    if real is not None and res.synthetic is not None:
        per = pd.DataFrame([{"column": c.name, "kind": c.kind, "dtype": c.dtype,
                             "missing (real)": float(real[c.name].isna().mean()),
                             "missing (synthetic)": float(res.synthetic[c.name].isna().mean())}
                            for c in md.columns])
        out += ("<details><summary>Columns</summary>"
                + _table(per, numeric=["missing (real)", "missing (synthetic)"]) + "</details>")
    out += ('<p class="note">The evaluation itself reads the real data without differential '
            'privacy: this report (its plots of real distributions in particular) should be '
            'handled with the same care as the real data.</p>')
    return out


def _headline(res: EvaluationResult) -> str:
    s, b, h = res.summary, res.baseline_summary or {}, res.holdout_summary or {}
    recs = []
    for k in _HEADLINE:
        if k not in s:
            continue
        group, ideal, text = METRIC_INFO[k]
        ideal = res.details.get("dcr", {}).get("ideal", ideal) if k == "dcr_share" else ideal
        recs.append({"metric": k, "group": group, "synthetic": s[k], "independent columns": b.get(k),
                     "real holdout": h.get(k), "ideal": ideal, "what it means": text})
    frame = pd.DataFrame(recs)
    return _table(frame, numeric=["synthetic", "independent columns", "real holdout", "ideal"])


def _findings(res: EvaluationResult) -> str:
    if not res.findings:
        return '<div class="box"><b>No warning raised</b> by the automatic checks.</div>'
    return ('<div class="box warn"><b>Findings:</b><ul>'
            + "".join(f"<li>{_e(f)}</li>" for f in res.findings) + "</ul></div>")


def _columns_table(res: EvaluationResult) -> str:
    t = res.table
    per = t[(t["column"] != "") & ~t["column"].str.contains(" | ", regex=False)
            & (t["group"] != "constraints")]
    wide = per.pivot_table(index="column", columns="metric", values="value", aggfunc="first")
    base = per.pivot_table(index="column", columns="metric", values="baseline", aggfunc="first")
    if "column_shapes" in base:
        wide["column_shapes (independent baseline)"] = base["column_shapes"]
    order = [c.name for c in res.metadata.columns if c.name in wide.index]
    wide = wide.loc[order].reset_index()
    return _table(wide, numeric=[c for c in wide.columns if c != "column"])


def _pairs_table(res: EvaluationResult, n: int = 12) -> str:
    pairs = res.details.get("pairs")
    if pairs is None or not len(pairs):
        return ""
    worst = pairs.assign(gap=pairs["independent"] - pairs["score"]).sort_values("score").head(n)
    worst = worst[["column_1", "column_2", "metric", "real", "synthetic", "score", "independent"]]
    return ("<p>Pairs reproduced least well (<i>independent</i>: the score of independent columns "
            "with perfect marginals; <i>real</i>/<i>synthetic</i>: correlations for numeric pairs):</p>"
            + _table(worst, numeric=["real", "synthetic", "score", "independent"]))


def _constraints_section(res: EvaluationResult) -> str:
    shares = res.details["constraints"]
    rules = [r for r in shares["real"] if r != "any"] + ["any"]
    frame = pd.DataFrame([{"constraint": "at least one" if r == "any" else r,
                           "synthetic": shares.get("value", {}).get(r),
                           "independent columns": shares.get("baseline", {}).get(r),
                           "real (training)": shares["real"][r],
                           "real holdout": shares.get("holdout", {}).get(r)} for r in rules])
    return ("<p>Share of rows that break each rule declared in the metadata (0 is ideal; the "
            "<i>independent columns</i> baseline does not enforce them):</p>"
            + _table(frame, numeric=["synthetic", "independent columns", "real (training)",
                                     "real holdout"]))


def _utility_section(res: EvaluationResult) -> str:
    ut = res.details.get("utility")
    if not ut:
        return "<p>No target column was given, so utility was not measured.</p>"
    b = (res.details.get("baseline") or {}).get("utility") or {}
    frame = pd.DataFrame([
        {"model trained on": "real data (TRTR)", ut["metric"]: ut["real"]},
        {"model trained on": f"synthetic data: {res.name} (TSTR)", ut["metric"]: ut["synthetic"]},
        {"model trained on": "independent-columns baseline (TSTR)", ut["metric"]: b.get("synthetic")},
        {"model trained on": "chance", ut["metric"]: ut["chance"]}])
    return (f"<p>Target <b>{_e(ut['target'])}</b> ({_e(ut['task'])}, metric {_e(ut['metric'])}), "
            "tested on real rows "
            + ("the synthesizer never saw (holdout)." if res.holdout is not None else
               "held out from the real table.") + "</p>"
            + _table(frame, numeric=[ut["metric"]])
            + f"<p>Utility score: <b>{_fmt(ut['score'])}</b> = (TSTR − chance) / (TRTR − chance).</p>")


def _glossary() -> str:
    items = "".join(f"<dt>{_e(k)} <span class='note'>(ideal {_fmt(v[1], 2)})</span></dt>"
                    f"<dd>{_e(v[2])}</dd>" for k, v in METRIC_INFO.items())
    return (f"<dl>{items}</dl><p class='note'>Columns of the tables: <b>synthetic</b> is the data "
            "under review; <b>independent columns</b> is a non-private baseline that samples each "
            "column separately from its real distribution (good marginals, no relationships): a "
            "useful synthesizer must beat it on pair trends, relationships, detection and utility; "
            "<b>real holdout</b> scores real rows that were not used for training as if they "
            "were synthetic: the best that can be expected given sampling noise.</p>")


def _single(res: EvaluationResult, level: int = 2) -> str:
    h = f"h{level}"
    out = [f"<{h}>Summary: {_e(res.name)}</{h}>", _findings(res), _headline(res)]
    out.append(f"<{h}>Privacy statement</{h}>" + _privacy_section(res))
    out.append(f"<{h}>Fidelity</{h}><p>Per column (1 is ideal):</p>" + _columns_table(res))
    if res.real is not None and res.synthetic is not None:
        out.append("<p>Real (filled) and synthetic (outline) distributions:</p>"
                   + _img(plot_marginals(res.real, res.synthetic, res.metadata)))
    if res.details.get("pairs") is not None and len(res.details["pairs"]):
        out.append(_img(plot_correlation_difference(pairs=res.details["pairs"])) + _pairs_table(res))
    if "constraints" in res.details:
        out.append(f"<{h}>Declared constraints</{h}>" + _constraints_section(res))
    out.append(f"<{h}>Utility</{h}>" + _utility_section(res))
    out.append(f"<{h}>Empirical privacy checks</{h}>")
    d = res.details.get("dcr")
    if d is not None:
        out.append(_img(plot_dcr(d)))
        if res.holdout is None:
            out.append("<p>No holdout was given: the DCR share and the membership-inference "
                       "attack need real rows the synthesizer never saw.</p>")
    out.append('<p class="note">These checks can reveal memorisation; they cannot prove its '
               'absence. Only a differential-privacy guarantee bounds the risk for every '
               'individual.</p>')
    return "".join(out)


def render_report(results: EvaluationResult | Sequence[EvaluationResult] | Mapping[str, EvaluationResult],
                  *, title: str = "Synthetic data evaluation report", dataset: str | None = None) -> str:
    """HTML text of the report (see :func:`write_report`)."""
    if isinstance(results, EvaluationResult):
        results = [results]
    elif isinstance(results, Mapping):
        named = []
        for name, r in results.items():
            r.name = str(name)
            named.append(r)
        results = named
    results = list(results)
    if not results:
        raise ValueError("no evaluation result to report.")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>{_e(title)}</h1>",
            f"<p class='note'>Generated {now} by nhssynth {_e(__version__)}"
            + (f" for dataset <b>{_e(dataset)}</b>" if dataset else "") + ".</p>",
            "<div class='box'>Every score is between 0 and 1 and <b>1 is ideal</b> unless the "
            "<i>ideal</i> column says otherwise. Each number sits next to two references: a "
            "baseline that keeps columns but breaks every relationship between them "
            "(<i>independent columns</i>), and real unseen rows (<i>real holdout</i>). The "
            "glossary at the end explains each metric.</div>",
            "<h2>Dataset</h2>", _dataset_section(results[0])]
    if len(results) > 1:
        recs = [{"model": r.name, "epsilon": r.epsilon if r.epsilon is not None else float("nan"),
                 **{k: r.summary.get(k) for k in _HEADLINE if k in r.summary}} for r in results]
        frame = pd.DataFrame(recs)
        body.append("<h2>Models compared</h2>"
                    + _table(frame, numeric=[c for c in frame.columns if c != "model"]))
        if sum(r.epsilon is not None for r in results) >= 1:
            body.append(_img(plot_epsilon_curve(results)))
        for r in results:
            body.append(f"<h2>Model: {_e(r.name)}</h2>" + _single(r, level=3))
    else:
        body.append(_single(results[0], level=2))
    body.append("<h2>What the numbers mean</h2>" + _glossary())
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            + "".join(body) + "</body></html>")


def write_report(results: EvaluationResult | Sequence[EvaluationResult] | Mapping[str, EvaluationResult],
                 path: str | Path, *, title: str = "Synthetic data evaluation report",
                 dataset: str | None = None) -> Path:
    """Write the report as one self-contained HTML file.

    Images are inlined as data URIs; no scripts, no external requests (a
    Content-Security-Policy forbids them).

    Parameters
    ----------
    results : EvaluationResult, list of them, or dict name -> EvaluationResult
        Several results add a comparison table and an epsilon-vs-fidelity curve.
    path : str or Path
    title : str
    dataset : str, optional
        Dataset name shown in the header.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.write_text(render_report(results, title=title, dataset=dataset), encoding="utf-8")
    return path
