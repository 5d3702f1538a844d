"""Customer lifetime value from repeat purchases: BG/NBD for the number of future trips and
Gamma-Gamma for the spend per trip (R-VAL-3).

Pure numerics (numpy, scipy), no Django: it takes the usual per-customer summary and returns fitted
parameters and predictions, so it can be checked against the published reference fits (the CDNOW
sample: tests/test_value_lifetime.py) and reused by the nightly job, a bench or a notebook.

The summary, per customer, in one time unit (the job uses weeks):

- ``x`` (frequency): the number of *repeat* purchases (trips after the first);
- ``t_x`` (recency): the age of the customer at their last purchase (0 when ``x`` is 0);
- ``T``: the age of the customer now (since their first purchase);
- ``m`` (monetary): the mean value of the repeat purchases (Gamma-Gamma only; customers with
  ``x`` = 0 do not enter its fit).

References:
- P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "Counting Your Customers the Easy Way: An
  Alternative to the Pareto/NBD Model", Marketing Science 24(2) — BG/NBD, equations (6), (9), (10).
- P. S. Fader, B. G. S. Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (note) — the
  Gamma-Gamma likelihood and the conditional expected spend.
Both fit by maximum likelihood (L-BFGS-B over log-parameters, so every parameter stays positive).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

__all__ = ["BgNbd", "GammaGamma", "fit_bg_nbd", "fit_gamma_gamma"]


def _arrays(*columns) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=float) for c in columns]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError("The summary columns must be one-dimensional and of the same length.")
    return arrays


def _check_summary(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if x.size == 0:
        raise ValueError("No customers to fit.")
    if (x < 0).any() or (t_x < 0).any() or (T <= 0).any():
        raise ValueError("Frequency and recency must be ≥ 0 and the age T > 0.")
    if (t_x > T + 1e-9).any():
        raise ValueError("Recency cannot exceed the customer's age T.")
    if ((x == 0) & (t_x > 0)).any():
        raise ValueError("A customer without repeat purchases has recency 0.")


# --- BG/NBD -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD: purchase rate ~ Gamma(r, alpha); drop-out probability after each purchase ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int

    def p_alive(self, x, t_x, T) -> np.ndarray:
        """Probability each customer is still active at T (eq. 10 of the 2005 paper)."""
        x, t_x, T = _arrays(x, t_x, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        ratio = np.where(x > 0, np.exp(np.log(a) - np.log(np.maximum(b + x - 1, 1e-12))
                                       + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))), 0.0)
        return 1.0 / (1.0 + ratio)

    def expected_purchases(self, t: float, x, t_x, T) -> np.ndarray:
        """Expected number of purchases in the next ``t`` time units, given each history (eq. 10)."""
        x, t_x, T = _arrays(x, t_x, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        # Eq. 10 has ((alpha + T) / (alpha + T + t))^(r + x) · 2F1(r + x, b + x; a + b + x − 1; z), which
        # overflows to 0 · inf for frequent buyers. By Euler's transformation it equals
        # (1 − z)^(a − 1) · 2F1(a + b − 1 − r, a − 1; a + b + x − 1; z): exact, and finite for any x.
        tail = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1) * (1 - tail)
        return head * self.p_alive(x, t_x, T)

    def expected_purchases_new(self, t):
        """Expected repeat purchases of a customer over their first ``t`` time units (eq. 9); ``t`` may
        be an array (then: each customer's age, to compare the model with what happened)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t = np.asarray(t, dtype=float)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _bg_nbd_ll(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bg_nbd(x, t_x, T, *, weights=None) -> BgNbd:
    """Fit BG/NBD by maximum likelihood to per-customer (frequency, recency, age). ``weights`` count
    identical customers (the job groups them to fit fast). ``ValueError`` on bad input or no convergence."""
    x, t_x, T = _arrays(x, t_x, T)
    _check_summary(x, t_x, T)
    w = np.ones_like(x) if weights is None else _arrays(weights, x)[0]
    scale = float(T.max())  # fit on a unit scale: alpha scales with time, the others do not

    def negative(log_params):
        params = np.exp(log_params)
        value = -(w * _bg_nbd_ll(params, x, t_x / scale, T / scale)).sum()
        return value if np.isfinite(value) else 1e300

    result = _minimize(negative, np.log([1.0, 1.0, 1.0, 1.0]))
    r, alpha, a, b = np.exp(result.x)
    return BgNbd(r=float(r), alpha=float(alpha * scale), a=float(a), b=float(b),
                 log_likelihood=float((w * _bg_nbd_ll(np.array([r, alpha * scale, a, b]), x, t_x, T)).sum()),
                 customers=int(w.sum()))


# --- Gamma-Gamma ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma: spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int

    def expected_spend(self, x, m) -> np.ndarray:
        """Expected value of a customer's future purchase given ``x`` repeat purchases averaging ``m``;
        the population mean for customers with none."""
        x, m = _arrays(x, m)
        p, q, g = self.p, self.q, self.gamma
        population = p * g / (q - 1)
        return np.where(x > 0, (g + m * x) * p / (p * x + q - 1), population)


def _gamma_gamma_ll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    p, q, g = params
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(g) + (p * x - 1) * np.log(m)
            + p * x * np.log(x) - (p * x + q) * np.log(g + m * x))


def fit_gamma_gamma(x, m, *, weights=None) -> GammaGamma:
    """Fit Gamma-Gamma to the customers with repeat purchases (x > 0, mean spend m > 0)."""
    x, m = _arrays(x, m)
    w = np.ones_like(x) if weights is None else _arrays(weights, x)[0]
    keep = (x > 0) & (m > 0)
    x, m, w = x[keep], m[keep], w[keep]
    if x.size < 2:
        raise ValueError("Gamma-Gamma needs customers with repeat purchases and a positive spend.")
    scale = float(np.median(m))  # fit on a unit scale: gamma scales with money, p and q do not

    def negative(log_params):
        value = -(w * _gamma_gamma_ll(np.exp(log_params), x, m / scale)).sum()
        return value if np.isfinite(value) else 1e300

    result = _minimize(negative, np.log([1.0, 2.0, 1.0]))
    p, q, g = np.exp(result.x)
    return GammaGamma(p=float(p), q=float(q), gamma=float(g * scale),
                      log_likelihood=float((w * _gamma_gamma_ll(np.array([p, q, g * scale]), x, m)).sum()),
                      customers=int(w.sum()))


def _minimize(negative, start: np.ndarray):
    result = minimize(negative, start, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * len(start))
    if not result.success and not np.isfinite(result.fun):
        raise ValueError(f"The fit did not converge: {result.message}")
    polish = minimize(negative, result.x, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-9,
                                                                          "maxiter": 4000})
    return polish if polish.fun <= result.fun else result
