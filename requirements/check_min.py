"""Check that requirements/min.txt pins each runtime dependency at exactly the lower bound that
pyproject.toml's ``dependencies`` declares (run by ``make test-min``)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
deps = re.search(r"^dependencies = \[(.*?)^\]", (root / "pyproject.toml").read_text(), re.S | re.M)
declared = dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9][^",;\s]*)"', deps.group(1)))
pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (root / "requirements/min.txt").read_text(), re.M))
if declared != pinned:
    names = sorted(set(declared) | set(pinned))
    for n in names:
        if declared.get(n) != pinned.get(n):
            print(f"{n}: pyproject.toml >={declared.get(n)}, requirements/min.txt =={pinned.get(n)}",
                  file=sys.stderr)
    sys.exit("error: requirements/min.txt and the lower bounds in pyproject.toml differ")
