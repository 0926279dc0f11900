"""The README's Python code really runs: every ```python block, in order, in one namespace.

Training epochs are capped at ``NHSSYNTH_README_MAX_EPOCHS`` (default 1) so the test stays
short; ``NHSSYNTH_README_MAX_EPOCHS=0`` runs the README exactly as written (several minutes).
The cap wraps ``DPVAESynthesizer.fit`` and leaves the estimator's parameters as written, so
``clone``/``get_params`` inside the grid search see the README's values.
"""
import functools
import os
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MAX_EPOCHS = int(os.environ.get("NHSSYNTH_README_MAX_EPOCHS", "1"))


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_every_python_block_is_found():
    text = README.read_text(encoding="utf-8")
    assert len(python_blocks()) == text.count("```python") >= 2


@pytest.fixture()
def capped_epochs(monkeypatch):
    from nhssynth import DPVAESynthesizer

    if MAX_EPOCHS <= 0:
        return
    fit = DPVAESynthesizer.fit

    @functools.wraps(fit)
    def capped(self, *args, **kwargs):
        written = self.max_epochs
        self.max_epochs = min(written, MAX_EPOCHS)
        try:
            return fit(self, *args, **kwargs)
        finally:
            self.max_epochs = written

    monkeypatch.setattr(DPVAESynthesizer, "fit", capped)


@pytest.mark.slow
def test_readme_python_blocks_run(capped_epochs):
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in python_blocks():
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own docs
    synth, train, holdout = namespace["synth"], namespace["train"], namespace["holdout"]
    assert synth.epsilon_ <= 3.0
    assert len(namespace["fake"]) == 1000
    # the quick start evaluates against rows the model was not fitted on
    assert train.index.intersection(holdout.index).empty and len(train) + len(holdout) == 9105
    assert synth.n_features_in_ == train.shape[1]
    assert set(namespace["search"].cv_results_["param_dpvaesynthesizer__epsilon"]) == {1, 10}
    assert namespace["search"].best_estimator_.steps[-1][1].max_epochs == 10  # as written
