"""The evaluation's sample of windows (§4.2): seeded, balanced over speakers, and the two
halves (same / independent conditioning) with the same speaker mix."""

from __future__ import annotations

import numpy as np


def balanced_counts(capacity: dict[int, int], total: int, rng: np.random.Generator
                    ) -> dict[int, int]:
    """``total`` items over speakers as equally as their ``capacity`` allows (water-filling:
    a speaker with fewer items gives all it has, the rest share the remainder equally; ties of
    the last unit are broken by ``rng``). ValueError if the capacities sum to less."""
    if sum(capacity.values()) < total:
        raise ValueError(f"need {total}, only {sum(capacity.values())} available")
    counts = {s: 0 for s in capacity}
    left = total
    open_ = sorted(capacity, key=lambda s: capacity[s])
    while left > 0 and open_:
        share = left // len(open_)
        if share == 0:  # fewer units left than speakers: a random subset gets one each
            for s in rng.permutation(open_)[:left]:
                counts[int(s)] += 1
            break
        s = open_[0]
        if capacity[s] - counts[s] <= share:  # the smallest speaker gives all it has
            left -= capacity[s] - counts[s]
            counts[s] = capacity[s]
            open_.pop(0)
        else:
            for t in open_:
                counts[t] += share
            left -= share * len(open_)
            open_ = [t for t in open_ if counts[t] < capacity[t]]
    return counts


def speaker_balanced_pairs(speakers: np.ndarray, n: int, seed: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``speakers``, the windows in file order) of x_1..x_N and x_{N+1}..x_2N.

    The 2N windows are drawn without replacement, balanced over speakers (equal numbers as far
    as each speaker's windows allow), and every speaker contributes the same number to both
    halves, so the halves have the same speaker mix. Each half is in random order (the
    Fréchet splits and MMD blocks take consecutive runs). Deterministic given ``seed``."""
    speakers = np.asarray(speakers)
    rng = np.random.default_rng(seed)
    ids = sorted(int(s) for s in np.unique(speakers))
    capacity = {s: int(np.sum(speakers == s)) // 2 for s in ids}
    pairs = balanced_counts(capacity, n, rng)
    first, second = [], []
    for s in ids:
        chosen = rng.permutation(np.flatnonzero(speakers == s))[:2 * pairs[s]]
        first.append(chosen[:pairs[s]])
        second.append(chosen[pairs[s]:])
    first_idx, second_idx = np.concatenate(first), np.concatenate(second)
    return first_idx[rng.permutation(n)], second_idx[rng.permutation(n)]


def speaker_balanced_subset(speakers: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` windows balanced over speakers, in random order (one half's rule)."""
    speakers = np.asarray(speakers)
    rng = np.random.default_rng(seed)
    ids = sorted(int(s) for s in np.unique(speakers))
    counts = balanced_counts({s: int(np.sum(speakers == s)) for s in ids}, n, rng)
    chosen = np.concatenate([rng.permutation(np.flatnonzero(speakers == s))[:counts[s]]
                             for s in ids])
    return chosen[rng.permutation(n)]
