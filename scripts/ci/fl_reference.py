"""Reference aggregates for qrlp-federated, computed with numpy.

Writes a JSON file of cases: random float32 updates and sample counts (fixed seed), and
the FedAvg (sample-weighted mean), coordinate-wise trimmed mean (floor(beta * n) dropped
at each end, as scipy.stats.trim_mean) and coordinate-wise median (numpy.median) of each,
computed in float64. The Rust test `numpy_reference` reads the file and compares.

Usage: python fl_reference.py OUTPUT.json
"""

import json
import sys

import numpy as np


def trimmed_mean(updates: np.ndarray, beta: float) -> np.ndarray:
    n = updates.shape[0]
    k = int(np.floor(beta * n))
    ordered = np.sort(updates, axis=0)
    return ordered[k : n - k].mean(axis=0)


def case(rng: np.random.Generator, name: str, n: int, length: int, beta: float, poison: bool):
    updates = rng.normal(0.0, 1.0, size=(n, length)).astype(np.float32)
    if poison:
        # One participant sends huge values in every coordinate.
        updates[rng.integers(n)] = np.float32(1e4)
    samples = rng.integers(0, 500, size=n)
    if samples.sum() == 0:
        samples[0] = 1
    wide = updates.astype(np.float64)
    weights = samples.astype(np.float64)
    fedavg = (wide * weights[:, None]).sum(axis=0) / weights.sum()
    return {
        "name": name,
        "beta": beta,
        "updates": [[float(v) for v in row] for row in updates],
        "num_samples": [int(s) for s in samples],
        "fedavg": fedavg.tolist(),
        "trimmed_mean": trimmed_mean(wide, beta).tolist(),
        "median": np.median(wide, axis=0).tolist(),
    }


def main() -> None:
    rng = np.random.default_rng(20240515)
    cases = [
        case(rng, "odd count, beta 0.2", 7, 50, 0.2, False),
        case(rng, "even count, beta 0.25", 10, 64, 0.25, False),
        case(rng, "one participant", 1, 9, 0.2, False),
        case(rng, "two participants, no trim", 2, 33, 0.3, False),
        case(rng, "poisoned, beta 0.1", 11, 200, 0.1, True),
        case(rng, "many participants, beta 0.3", 40, 257, 0.3, False),
    ]
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump({"seed": 20240515, "cases": cases}, out)
    print(f"wrote {len(cases)} cases to {sys.argv[1]}")


if __name__ == "__main__":
    main()
