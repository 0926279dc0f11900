"""One seeding scheme for the whole library: a ``random_state`` becomes a SeedSequence whose
children seed each random part of a fit (noise, initialisation, batches...), by name, so that
adding a part never changes the draws of another."""
from __future__ import annotations

import hashlib
import numbers
from typing import Any, Sequence

import numpy as np

__all__ = ["seed_sequence", "spawn", "spawn_seed"]


def seed_sequence(random_state: Any) -> np.random.SeedSequence:
    """A SeedSequence from ``None`` (fresh OS entropy), an int, a RandomState or a Generator
    (one draw from it, so the same object gives a new sequence each call)."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}.")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator, got "
                     f"{random_state!r}.")


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def spawn(random_state: Any, names: Sequence[str]) -> dict[str, np.random.Generator]:
    """One independent Generator per name, derived from ``random_state`` and the name only."""
    base = seed_sequence(random_state)
    return {name: np.random.default_rng(
        np.random.SeedSequence(base.entropy, spawn_key=(*base.spawn_key, _name_key(name))))
        for name in names}


def spawn_seed(random_state: Any, name: str) -> int:
    """A 32-bit integer seed for ``name`` (for APIs seeded by an int, such as scikit-learn's
    ``random_state``)."""
    return int(spawn(random_state, [name])[name].integers(0, 2**32 - 1))
