"""The lifetime-value estimators (R-VAL-3) against the published reference fits on the CDNOW sample
(2,357 customers, weeks; tests/data/cdnow_summary.csv, as shipped by the MIT-licensed `lifetimes`
package): BG/NBD in Fader, Hardie & Lee (2005) and Gamma-Gamma in Fader & Hardie (2013)."""
import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.value.lifetime import BgNbd, fit_bg_nbd, fit_gamma_gamma

DATA = Path(__file__).parent / "data" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow():
    rows = list(csv.DictReader(DATA.open()))
    return {key: np.array([float(row[key]) for row in rows]) for key in ("x", "t_x", "T", "zbar")}


@pytest.fixture(scope="module")
def bg(cdnow):
    return fit_bg_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


def test_bg_nbd_matches_the_published_fit(bg):
    # Fader, Hardie & Lee (2005), section 5: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    assert (round(bg.r, 3), round(bg.alpha, 3), round(bg.a, 3), round(bg.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert bg.customers == 2357


def test_bg_nbd_conditional_expectation_matches_the_paper(bg):
    # The paper's worked example: x = 2, t_x = 30.43, T = 38.86 → 1.226 purchases in the next 39 weeks
    assert bg.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=0.001)
    assert bg.p_alive([0], [0], [38.86])[0] == 1.0  # no repeat purchase: never seen to drop out


def test_gamma_gamma_matches_the_published_fit(cdnow):
    # Fader & Hardie (2013): p = 6.25, q = 3.74, gamma = 15.44 over the 946 repeat customers
    gg = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    assert (gg.p, gg.q, gg.gamma) == (pytest.approx(6.25, abs=0.01), pytest.approx(3.74, abs=0.01),
                                      pytest.approx(15.44, abs=0.01))  # the likelihood is flat along gamma
    assert gg.customers == 946
    spend = gg.expected_spend([2, 0], [22.35, 0])
    assert spend[0] == pytest.approx(24.66, abs=0.01)  # shrunk from 22.35 towards the population mean
    assert spend[1] == pytest.approx(gg.p * gg.gamma / (gg.q - 1))


def test_grouped_customers_fit_like_the_individual_ones(cdnow, bg):
    triples = np.stack([cdnow["x"], cdnow["t_x"], cdnow["T"]], axis=1)
    unique, counts = np.unique(triples, axis=0, return_counts=True)
    grouped = fit_bg_nbd(unique[:, 0], unique[:, 1], unique[:, 2], weights=counts)
    assert grouped.r == pytest.approx(bg.r, rel=1e-3) and grouped.b == pytest.approx(bg.b, rel=1e-3)
    assert grouped.customers == 2357


@settings(max_examples=60, deadline=None)
@given(x=st.integers(1, 30), T=st.floats(10, 100), earlier=st.floats(0.05, 0.95))
def test_a_more_recent_last_purchase_never_lowers_p_alive(x, T, earlier):
    model = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, customers=1)
    older, recent = model.p_alive([x, x], [T * earlier * 0.5, T * earlier], [T, T])
    assert recent >= older - 1e-12


@pytest.mark.parametrize("x, t_x, T, message", [
    ([], [], [], "No customers"),
    ([1], [5], [3], "Recency cannot exceed"),
    ([0], [2], [5], "recency 0"),
    ([-1], [0], [5], "must be ≥ 0"),
    ([1, 2], [1], [5, 6], "same length"),
])
def test_bad_summaries_are_refused_clearly(x, t_x, T, message):
    with pytest.raises(ValueError, match=message):
        fit_bg_nbd(x, t_x, T)
