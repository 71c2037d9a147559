"""DeLong's test on many cases: the fast midrank algorithm (Sun & Xu 2014) against the direct
pairwise one, and scikit-learn's AUC alone as a floor.

    .venv/bin/python benchmarks/delong.py [--n 1000000]
"""
import argparse, time
import numpy as np
from sklearn.metrics import roc_auc_score

from ich_nb.stats import delong_cov, delong_test


def pairwise_delong(y, a, b):
    "DeLong by explicit comparison of every positive with every negative: O(m n) time and memory."
    y = y.astype(bool)
    out = []
    for s in (a, b):
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)
        out.append((psi.mean(), psi.mean(1), psi.mean(0)))
    v10, v01 = np.stack([o[1] for o in out]), np.stack([o[2] for o in out])
    cov = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    return np.array([o[0] for o in out]), cov


def timed(f, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter(); out = f(); best = min(best, time.perf_counter() - t)
    return out, best


def main(n):
    rng = np.random.default_rng(0)
    y = rng.random(n) < 0.4
    a, b = y + rng.normal(0, 1.0, n), y + rng.normal(0, 1.2, n)
    r, t_fast = timed(lambda: delong_test(y, a, b))
    print(f"delong_test, {n:,} cases: {t_fast:.2f} s  (AUCs {r.auc_a:.4f} vs {r.auc_b:.4f}, z = {r.z:.1f}, p = {r.p:.3g})")
    _, t_sk = timed(lambda: (roc_auc_score(y, a), roc_auc_score(y, b)))
    print(f"scikit-learn roc_auc_score of both models (AUC only, no variance): {t_sk:.2f} s")
    m = 20_000
    (auc_p, cov_p), t_pair = timed(lambda: pairwise_delong(y[:m], a[:m], b[:m]), repeat=1)
    (auc_f, cov_f), t_small = timed(lambda: delong_cov(y[:m], np.stack([a[:m], b[:m]])))
    assert np.allclose(auc_p, auc_f, rtol=1e-12) and np.allclose(cov_p, cov_f, rtol=1e-9)
    print(f"{m:,} cases: pairwise {t_pair:.2f} s, midrank {t_small:.4f} s: {t_pair / t_small:.0f}x faster, same AUCs and covariance")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=1_000_000)
    main(p.parse_args().n)
