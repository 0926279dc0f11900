"""The experiment dashboard: a self-contained ``index.html`` comparing every run, and a server.

The page uses inline CSS and images as ``data:`` URIs; a Content-Security-Policy forbids any
external request.  Links point to each run's ``report.html`` and files, relative to the
experiment folder, so the page works opened from disk or served by :func:`serve`.
"""
from __future__ import annotations

import base64
import functools
import html
import math
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._version import __version__
from ..reporting.plots import figure_to_bytes
from .experiment import HEADLINE, Layout, collect_results
from .files import read_json, write_text

__all__ = ["plot_sweep", "build_index", "make_server", "serve"]

_METRICS = ("fidelity", "quality", "utility", "privacy")
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def plot_sweep(frame: pd.DataFrame, metrics: tuple[str, ...] = _METRICS) -> Figure:
    """Scores against epsilon, one line per architecture (mean over repeats).

    Non-private runs (no epsilon) are dashed horizontal lines.
    """
    metrics = tuple(m for m in metrics if m in frame and frame[m].notna().any())
    n = max(len(metrics), 1)
    fig = Figure(figsize=(3.2 * n, 3.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)).ravel()
    eps = frame["epsilon_budget"].astype(float)
    finite = frame[np.isfinite(eps)]
    log = len(finite) and finite["epsilon_budget"].max() / finite["epsilon_budget"].min() > 20
    for ax, metric in zip(axes, metrics):
        for i, (arch, group) in enumerate(frame.groupby("architecture", sort=True)):
            color = _COLORS[i % len(_COLORS)]
            g_eps = group["epsilon_budget"].astype(float)
            priv = group[np.isfinite(g_eps)]
            if len(priv):
                mean = priv.groupby("epsilon_budget")[metric].mean()
                ax.plot(mean.index, mean.values, "o-", color=color, label=arch)
            nonprivate = group.loc[~np.isfinite(g_eps), metric].dropna()
            if len(nonprivate):
                ax.axhline(nonprivate.mean(), color=color, ls="--", lw=1.2,
                           label=f"{arch} (non-private)")
        if log:
            ax.set_xscale("log")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("epsilon (smaller = more private)", fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("score (1 is ideal)", fontsize=8)
    axes[0].legend(fontsize=6)
    return fig


def _png_uri(fig: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure_to_bytes(fig)).decode("ascii")


def _fmt(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return html.escape(str(x)) if x is not None else "–"
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#1d2733;background:#fff}
h1{color:#005eb8;margin-bottom:.2rem}h2{border-bottom:2px solid #005eb8;padding-bottom:.2rem;margin-top:2rem}
.note{color:#555;font-size:.9rem}table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.8rem 0}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:right}th{background:#eef4fb}
td.l,th.l{text-align:left}tr:nth-child(even) td{background:#f8fafc}
.good{color:#007f3b;font-weight:600}.bad{color:#d5281b;font-weight:600}
img{max-width:100%;border:1px solid #e5e7eb;margin:.5rem 0}
.box{background:#f0f4f5;border-left:4px solid #005eb8;padding:.6rem 1rem;margin:1rem 0}
a{color:#005eb8}
"""


def _score_cell(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "<td>–</td>"
    cls = "" if not math.isfinite(f) else (" class='good'" if f >= 0.8 else (" class='bad'" if f < 0.5 else ""))
    return f"<td{cls}>{_fmt(f)}</td>"


def _dataset_section(root: Path, data_dir: Path) -> str:
    info = read_json(data_dir / "dataloader.json")
    frame = collect_results(data_dir)
    key = html.escape(data_dir.name)
    parts = [f"<h2>Dataset: {key}</h2>",
             f"<p class='note'>{info['n_train']} training rows, {info['n_holdout']} holdout rows, "
             f"{info['n_columns']} columns; source {html.escape(str(info['source']))}; metadata "
             f"{html.escape(str(info['metadata']))}.</p>"]
    if frame.empty:
        return "".join(parts) + "<p>No fitted runs yet.</p>"
    if frame["evaluated"].any():
        parts.append(f"<img alt='scores against epsilon for {key}' src='{_png_uri(plot_sweep(frame))}'>")
    head = "".join(f"<th>{h}</th>" for h in HEADLINE)
    parts.append("<table><thead><tr><th class='l'>run</th><th class='l'>architecture</th>"
                 "<th>epsilon budget</th><th>epsilon spent</th>" + head +
                 "<th class='l'>files</th></tr></thead><tbody>")
    for row in frame.itertuples(index=False):
        rel = f"{data_dir.name}/{row.run}"
        links = [f"<a href='{html.escape(rel)}/synthetic.csv'>synthetic.csv</a>",
                 f"<a href='{html.escape(rel)}/privacy.json'>privacy</a>"]
        if (root / rel / "report.html").is_file():
            links.insert(0, f"<a href='{html.escape(rel)}/report.html'>report</a>")
        name = (f"<a href='{html.escape(rel)}/report.html'>{html.escape(row.run)}</a>"
                if (root / rel / "report.html").is_file() else html.escape(row.run))
        budget = "non-private" if not math.isfinite(float(row.epsilon_budget)) else _fmt(row.epsilon_budget, 3)
        spent = "–" if not math.isfinite(float(row.epsilon_spent)) else _fmt(row.epsilon_spent, 3)
        cells = "".join(_score_cell(getattr(row, h)) for h in HEADLINE)
        parts.append(f"<tr><td class='l'>{name}</td><td class='l'>{html.escape(row.architecture)}</td>"
                     f"<td>{budget}</td><td>{spent}</td>{cells}<td class='l'>{' · '.join(links)}</td></tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def build_index(root: str | Path, *, title: str | None = None) -> Path:
    """Write ``<root>/index.html`` comparing every run of every dataset in the experiment."""

    root = Path(root)
    layout = Layout(root.parent, root.name)
    datasets = layout.dataset_dirs()
    if not datasets:
        raise FileNotFoundError(f"experiment folder {str(root)!r} has no dataloader output; run "
                                f"'nhssynth pipeline' (or the dataloader and model steps) first.")
    title = title or f"nhssynth experiment: {root.name}"
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='note'>nhssynth {html.escape(__version__)} · folder "
            f"<code>{html.escape(str(root))}</code></p>",
            "<div class='box'>Each row is one fitted synthesizer. Scores are between 0 and 1, "
            "<b>1 is ideal</b>: <i>fidelity</i> (column shapes and pair trends), <i>quality</i> "
            "(shapes, relationships, detection and utility), <i>utility</i> (train on synthetic, "
            "test on real, relative to real), <i>privacy</i> (synthetic rows no closer to training "
            "rows than to unseen rows), <i>detection</i> (a classifier cannot tell real from "
            "synthetic). Smaller epsilon means a stronger privacy guarantee; the run's report "
            "explains every number.</div>"]
    for data_dir in datasets:
        with _quiet():
            body.append(_dataset_section(root, data_dir))
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            + "".join(body) + "</body></html>")
    return write_text(root / "index.html", page)


class _quiet:
    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(root: str | Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for the experiment folder (``port=0`` picks a free port)."""
    handler = functools.partial(_Handler, directory=str(Path(root).resolve()))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise OSError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another "
                      f"--port (0 picks a free one).") from None


def serve(root: str | Path, host: str = "127.0.0.1", port: int = 8000, *,
          announce: Callable[[str], None] = print, stop: threading.Event | None = None) -> None:
    """Serve ``root`` until Ctrl-C (or ``stop`` is set); announces the dashboard URL first."""
    server = make_server(root, host, port)
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    url = f"http://{shown}:{server.server_address[1]}/index.html"
    announce(f"dashboard: serving {root} at {url} (Ctrl-C to stop)")
    try:
        if stop is None:
            server.serve_forever()
        else:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if stop is not None:
            server.shutdown()
        server.server_close()
