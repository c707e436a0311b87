"""The one summary of repeated values (`unlearning.common.summary`): mean, sd and the mean's 95 % interval, which the
CLI's per-method table and the report's tables both print.

The interval is checked against scipy itself (Student t; the seeded bootstrap with the same settings), on data whose
shape decides the method (normal-ish: t; two values or skewed: bootstrap); the cut at a key's range on values whose
t interval crosses it. No pandas here: the CLI summarises without it.
"""

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from unlearning.common import summary as S


def scipy_bootstrap(*samples, statistic=np.mean, paired=False):
    res = stats.bootstrap(samples, statistic, paired=paired, confidence_level=S.CONFIDENCE, method="BCa",
                          n_resamples=S.BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(S.BOOTSTRAP_SEED))
    return tuple(float(x) for x in res.confidence_interval)


def test_normal_values_get_scipys_t_interval():
    v = np.random.default_rng(0).normal(10.0, 2.0, size=10)
    assert stats.skewtest(v).pvalue > S.SKEW_ALPHA and not S.skewed(v)
    lo, hi, method = S.interval(v)
    assert method == "t"
    assert (lo, hi) == tuple(float(x) for x in stats.ttest_1samp(v, 0.0).confidence_interval(0.95))
    # the textbook form: mean ± t(0.975, n − 1) · s / √n
    half = stats.t.ppf(0.975, len(v) - 1) * stats.sem(v)
    assert lo == pytest.approx(v.mean() - half) and hi == pytest.approx(v.mean() + half)
    s = S.summary(list(v))
    assert (s.mean, s.sd, s.n, s.lo, s.hi, s.method) == (pytest.approx(v.mean()), pytest.approx(v.std(ddof=1)), 10,
                                                         lo, hi, "t")


def test_missing_values_are_left_out_of_every_statistic():
    s = S.summary([0.2, None, 0.4, float("nan"), 0.3])
    assert (s.mean, s.sd, s.n) == (pytest.approx(0.3), pytest.approx(0.1), 3)
    assert (s.lo, s.hi) == tuple(float(x) for x in stats.ttest_1samp([0.2, 0.4, 0.3], 0.0).confidence_interval(0.95))
    empty = S.summary([])
    assert np.isnan(empty.mean) and np.isnan(empty.sd) and empty.n == 0 and empty.method == ""


def test_fewer_than_three_values_are_bootstrapped():
    lo, hi, method = S.interval([1.0, 2.0, float("nan")])         # NaN is a missing value, not a third one
    assert method == "bootstrap" and (lo, hi) == scipy_bootstrap(np.array([1.0, 2.0]))
    assert (lo, hi) == (1.0, 2.0)             # two values: the bootstrap cannot reach beyond them (the note says so)
    assert S.interval([1.0, 2.0, 3.1])[2] == "t"


def test_skewed_values_are_bootstrapped():
    heavy = np.exp(np.random.default_rng(0).normal(0.0, 1.5, size=12))       # lognormal: a long right tail
    assert stats.skewtest(heavy).pvalue < S.SKEW_ALPHA and S.skewed(heavy)
    lo, hi, method = S.interval(heavy)
    assert method == "bootstrap" and (lo, hi) == scipy_bootstrap(heavy)
    assert lo > stats.ttest_1samp(heavy, 0.0).confidence_interval(0.95).low      # BCa: not symmetric about the mean
    # below SKEW_MIN_VALUES skewness cannot be tested: t, even for three values as lopsided as the full-MNIST MIA
    # gap at lr 3e-3 (issue 20); cut at the gap's range [0, 1], the interval says how little 3 seeds pin it down
    gap = [0.105, 0.708, 0.020]
    assert not S.skewed(gap) and S.interval(gap)[2] == "t"
    t_lo, t_hi = stats.ttest_1samp(gap, 0.0).confidence_interval(0.95)
    assert t_lo < 0 and t_hi > 1 and S.interval(gap, S.bounds("mia_gap")) == (0.0, 1.0, "t")


def test_the_same_values_give_the_same_bytes_without_pandas():
    gap = [0.105, 0.708, 0.020]
    here = S.interval(gap)
    assert here == S.interval(gap)
    code = ("import sys; from unlearning.common.summary import interval; print(repr(interval([0.105, 0.708, 0.020])));"
            " assert 'pandas' not in sys.modules and 'torch' not in sys.modules, 'pandas or torch imported'")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert other.strip() == repr(here)       # a fresh process: the bootstrap is seeded, not drawn from global state


def test_one_value_has_no_interval_and_equal_values_a_point():
    for values in ([3.0], [3.0, None, float("nan")], []):
        lo, hi, method = S.interval(values)
        assert np.isnan(lo) and np.isnan(hi) and method == ""
    assert S.interval([0.5, 0.5, 0.5]) == (0.5, 0.5, "equal")         # no spread: the interval is the value


def test_intervals_are_cut_at_the_quantitys_range():
    acc = [0.9, 1.0, 1.0, 0.95]                # accuracies: t reaches above 1
    assert stats.ttest_1samp(acc, 0.0).confidence_interval(0.95).high > 1
    lo, hi, _ = S.interval(acc, S.bounds("test_acc"))
    assert hi == 1.0 and lo == pytest.approx(stats.ttest_1samp(acc, 0.0).confidence_interval(0.95).low)
    s = S.summary(acc, "test_acc", scale=100)          # in % : cut at 100
    assert s.hi == 100.0 and s.mean == pytest.approx(96.25)
    assert S.bounds("d") == S.UNBOUNDED and S.bounds("no such key") == S.UNBOUNDED


def test_ratio_of_means_is_a_paired_bootstrap():
    a, b = np.array([500.0, 300.0, 1000.0]), np.array([480.0, 320.0, 1000.0])
    lo, hi = S.ratio_interval(a, b)
    assert (lo, hi) == scipy_bootstrap(a, b, statistic=lambda x, y, axis=-1: x.mean(axis) / y.mean(axis),
                                       paired=True)
    assert lo <= a.mean() / b.mean() <= hi
    assert S.ratio_interval([500.0, None, 300.0, 1000.0], [480.0, 7.0, 320.0, 1000.0]) == (lo, hi)  # pair dropped
    assert all(np.isnan(S.ratio_interval([1.0], [2.0])))
    assert S.ratio_interval([2.0, 2.0], [4.0, 4.0]) == (0.5, 0.5)
    with pytest.raises(ValueError, match=r"3 numerators and 2 denominators"):
        S.ratio_interval([1.0, 2.0, 3.0], [1.0, 2.0])
