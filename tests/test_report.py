import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from nhssynth import Metadata
from nhssynth.metrics import evaluate
from nhssynth.reporting import write_report
from nhssynth.synthesizers import MarginalSynthesizer
from nhssynth.reporting.plots import (plot_correlation_difference, plot_dcr, plot_epsilon_curve,
                               plot_marginals, save_figure)

from .test_metrics_data import make_table


@pytest.fixture(scope="module")
def results():
    df = make_table(900, seed=9)
    md = Metadata.from_dataframe(df).update("group", domain="declared")
    train, holdout = df.iloc[:600], df.iloc[600:]
    out = {}
    for eps in (0.5, 5.0):
        est = MarginalSynthesizer(epsilon=eps, metadata=md, random_state=0).fit(train)
        out[f"marginal eps={eps}"] = evaluate(est, train, holdout, md, target="flag")
    return out


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data") and value:
                self.refs.append(value)


def _check_self_contained(text):
    parser = _Refs()
    parser.feed(text)
    assert parser.refs and all(r.startswith("data:") for r in parser.refs), parser.refs[:3]
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert "@import" not in text


def test_single_report_content(results, tmp_path):
    res = next(iter(results.values()))
    path = write_report(res, tmp_path / "report.html", dataset="toy")
    text = path.read_text(encoding="utf-8")
    _check_self_contained(text)
    # the epsilon actually spent (columns withheld at this budget spend less than 0.5)
    spent = f"ε = {res.privacy['epsilon']:.3f}"
    assert 0 < res.privacy["epsilon"] <= 0.5
    for needle in ("Dataset", "Privacy statement", spent, "Where the budget was spent",
                   "column_pair_trends", "independent columns", "real holdout", "Utility",
                   "Empirical privacy checks", "What the numbers mean", "data:image/png;base64,"):
        assert needle in text, needle
    assert text.count("<img") >= 3  # marginals, pair heatmap, DCR histogram


def test_unknown_privacy_is_stated(tmp_path):
    df = make_table(300, seed=1)
    res = evaluate(make_table(300, seed=2), df, metadata=Metadata.from_dataframe(df), baseline=False)
    text = write_report(res, tmp_path / "r.html").read_text()
    assert "Privacy guarantee: unknown" in text
    _check_self_contained(text)


def test_plots_save_png_and_svg(results, tmp_path):
    res = next(iter(results.values()))
    figs = [plot_marginals(res.real, res.synthetic, res.metadata),
            plot_correlation_difference(res.real, res.synthetic, res.metadata),
            plot_dcr(res.details["dcr"]), plot_epsilon_curve(list(results.values()))]
    for i, fig in enumerate(figs):
        for ext in ("png", "svg"):
            p = save_figure(fig, tmp_path / f"f{i}.{ext}")
            assert p.stat().st_size > 1000
    assert (tmp_path / "f0.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "f0.svg").read_bytes()[:500]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is required in CI (apt-get install -y chromium)")
    pytest.skip("headless chromium not installed")


@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_network(results, tmp_path):
    chromium = _chromium()
    report = write_report(results, tmp_path / "report.html", dataset="toy")
    text = report.read_text()
    _check_self_contained(text)
    assert "Models compared" in text and text.count("<img") >= 7  # + epsilon curve
    shot = tmp_path / "report.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
           '--host-resolver-rules=MAP * ~NOTFOUND', "--window-size=1200,2400",
           f"--screenshot={shot}", report.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 20_000  # a real page, not a blank one
