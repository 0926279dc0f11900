"""The README's Python quick start really runs (every ```python block, in order)."""
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["synth"].epsilon_ <= 3.0
    assert len(namespace["fake"]) == 1000
    assert set(namespace["search"].cv_results_["param_dpvaesynthesizer__epsilon"]) == {0.5, 1, 3, 10}
