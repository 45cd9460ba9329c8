"""A monotone learning curve (metric vs number of real training frames) and its inverse.

What extra (synthetic or generated) data is worth is best said in real frames: the number of real
frames a real-only model would need to score what the model trained with the extra data scores.
That needs the real-only learning curve as a function one can invert, and the measured points are
noisy (seeds, test images), so it is fitted.

The fit: a saturating power law, ``y = a - b * n^(-c)`` with ``b >= 0`` and ``c > 0``: increasing
in ``n`` by construction, flattening towards ``a``. Why this form and not isotonic regression:

* it is the form learning curves take in practice, and the one the transfer-scaling literature
  fits to define "effective data transferred" (Hernandez et al., 2021);
* it pools the noise of all sizes into three parameters, while isotonic regression is a step
  function of the noise: on a flat stretch its inverse jumps between sizes, and between two
  measured sizes it would still need an interpolation rule;
* with ``c`` near 0 it is linear in log n, with larger ``c`` it saturates quickly, so both curve
  shapes seen on small data are covered.

Fitting is least squares on the mean metric per size: for each ``c`` of a log-spaced grid the model
is linear in ``(a, b)`` (closed form, with ``b`` clipped at 0, i.e. a flat line, when the data fall);
the ``c`` with the smallest residual wins. The grid makes the fit deterministic and vectorised over
thousands of bootstrap resamples at once.

Outside the measured range the curve is not trusted: :func:`invert` returns the number of frames
only between the smallest and the largest measured size; a value above the fitted curve at the
largest size is ``+inf`` ("beyond the measured range") and one below it at the smallest size is
``-inf`` ("below the measured range"). A flat fit (the metric does not rise with real frames) has
an empty range: everything is beyond or below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vsynth.errors import DataError

#: exponents c tried by the fit (log-spaced: 0.02 is almost log-linear, 4 saturates after the first size)
EXPONENTS = np.geomspace(0.02, 4.0, 241)


@dataclass(frozen=True)
class PowerLaw:
    """Fitted ``y = a - b * n^(-c)`` for R curves at once (arrays of shape (R,)) over [n_min, n_max]."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    n_min: float
    n_max: float
    rmse: np.ndarray

    def __call__(self, n: np.ndarray | float) -> np.ndarray:
        """(R, M) curve values at the M sizes ``n`` (for scalar ``n``: (R,))."""
        n_arr = np.asarray(n, dtype=np.float64)
        out = self.a[:, None] - self.b[:, None] * np.power(n_arr.reshape(1, -1), -self.c[:, None])
        return out[:, 0] if n_arr.ndim == 0 else out

    def invert(self, y: np.ndarray) -> np.ndarray:
        """Frames at which each curve reaches ``y`` (R,), within [n_min, n_max]; +inf above, -inf below it."""
        y = np.asarray(y, dtype=np.float64)
        top, bottom = self(self.n_max), self(self.n_min)
        out = np.empty_like(y)
        above, below = y > top, y < bottom
        inside = ~(above | below)
        rising = inside & (self.b > 0)
        gap = np.where(rising, self.a - y, 1.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            n = np.power(np.where(rising, self.b, 1.0) / np.maximum(gap, 1e-300), 1.0 / self.c)
        out[rising] = np.clip(n[rising], self.n_min, self.n_max)
        out[inside & ~rising] = self.n_min  # flat curve and y exactly on it: the smallest size already scores it
        out[above] = np.inf
        out[below] = -np.inf
        return out

    def params(self, i: int = 0) -> dict[str, float]:
        return {"a": float(self.a[i]), "b": float(self.b[i]), "c": float(self.c[i]), "rmse": float(self.rmse[i])}


def fit_power_law(n: np.ndarray, y: np.ndarray) -> PowerLaw:
    """Least-squares saturating power law through points (``n`` (K,), ``y`` (R, K) or (K,)), R fits at once.

    Needs at least three distinct sizes (three parameters). Non-finite ``y`` are not allowed.
    """
    n = np.asarray(n, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if n.ndim != 1 or y.shape[1] != n.size:
        raise DataError(f"learning curve: {n.size} sizes for points of shape {y.shape}")
    if np.unique(n).size < 3 or (n <= 0).any():
        raise DataError(f"learning curve: a saturating power law needs at least three distinct positive sizes, "
                        f"got {sorted(set(n.tolist()))}")
    if not np.isfinite(y).all():
        raise DataError("learning curve: non-finite metric values")
    x = np.power(n[None, :], -EXPONENTS[:, None])  # (G, K)
    xc = x - x.mean(axis=1, keepdims=True)
    sxx = (xc * xc).sum(axis=1)  # (G,)
    yc = y - y.mean(axis=1, keepdims=True)  # (R, K)
    sxy = yc @ xc.T  # (R, G)
    slope = np.minimum(sxy / sxx, 0.0)  # y = a + slope * x with x = n^-c falling in n: rising needs slope <= 0
    sst = (yc * yc).sum(axis=1, keepdims=True)
    sse = sst - 2 * slope * sxy + slope * slope * sxx
    best = np.argmin(sse, axis=1)
    rows = np.arange(y.shape[0])
    b = np.abs(slope[rows, best])
    c = EXPONENTS[best]
    a = y.mean(axis=1) + b * x[best].mean(axis=1)  # a = mean(y) - slope * mean(x)
    rmse = np.sqrt(np.maximum(sse[rows, best], 0.0) / n.size)
    return PowerLaw(a=a, b=b, c=c, n_min=float(n.min()), n_max=float(n.max()), rmse=rmse)
