"""``python -m nhssynth``: the same as the ``nhssynth`` console script."""
from .cli.main import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
