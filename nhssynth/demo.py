"""The main job behind ``make demo``: DP synthesis of the bundled SUPPORT2 table.

Run ``python -m nhssynth.demo --output out/demo``.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .datasets import load_example

logger = logging.getLogger("nhssynth")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nhssynth.demo", description=__doc__)
    parser.add_argument("--output", default="out/demo", help="output folder (default: out/demo)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    df, metadata = load_example(return_metadata=True)
    metadata.to_yaml(out / "metadata.yaml")
    print(f"loaded SUPPORT2: {df.shape[0]} rows x {df.shape[1]} columns")
    print(f"wrote {out / 'metadata.yaml'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
