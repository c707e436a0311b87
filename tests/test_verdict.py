"""The verdict (`unlearning.evaluation.verdict`) on panels whose answer is known, and its parts against references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from unlearning.evaluation import forgetting as fg
from unlearning.evaluation import verdict as V

FAST = {"n_permutations": 500, "n_bootstrap": 500}


def _panel(n, m, shift_sd=0.0, share=1.0, seed=0):
    return V.simulated_panel(n, m, shift_sd, share, np.random.default_rng(seed))


@pytest.mark.parametrize("double", [True, False])
def test_epsilon_batch_equals_epsilon_per_example(double):
    rng = np.random.default_rng(0)
    for trial in range(120):
        n_u, n_r = rng.integers(2, 12, 2)
        u, r = rng.normal(rng.normal(), 1, (n_u, 6)), rng.normal(0, rng.uniform(0.3, 2), (n_r, 6))
        if trial % 4 == 0:                                   # ties: the reference path
            u, r = np.round(u), np.round(r)
        np.testing.assert_allclose(fg.epsilon_batch(u, r, double=double), fg.epsilon_per_example(u, r, double=double),
                                   rtol=0, atol=1e-12)
    u, r = rng.normal(size=(3, 8, 5)), rng.normal(size=(3, 8, 5))        # leading batch axes
    assert fg.epsilon_batch(u, r).shape == (3, 5)
    np.testing.assert_allclose(fg.epsilon_batch(u, r)[1], fg.epsilon_per_example(u[1], r[1]), atol=1e-12)


def test_f_null_is_the_mean_over_every_order():
    n = 3                      # C(6, 3) = 20 orders, each an example: φ = its position, unlearned where chosen
    eps = []
    for chosen in itertools.combinations(range(2 * n), n):
        rest = [i for i in range(2 * n) if i not in chosen]
        eps.append(fg.epsilon_per_example(np.array(chosen, float)[:, None], np.array(rest, float)[:, None])[0])
    assert V.f_null(n, n) == (pytest.approx(fg.forget_quality(eps, n)), 0.0)


def test_f_null_drawn_agrees_with_enumerated(monkeypatch):
    exact, _ = V.f_null(6, 6)                                # C(12, 6) = 924 orders, enumerated
    V.f_null.cache_clear()
    monkeypatch.setattr(V, "NULL_DRAWS", 500)                # now drawn
    drawn, se = V.f_null(6, 6)
    V.f_null.cache_clear()
    assert se > 0 and abs(drawn - exact) < 4 * se


def test_exchangeable_groups_are_rejected_at_most_at_the_size():
    panels = 80
    rejected = sum(V.difference(*_panel(8, 20, seed=s), seed=s, n_resamples=500).p_value <= V.ALPHA
                   for s in range(panels))
    # the permutation test's size is ALPHA; allow two binomial standard errors of sampling
    assert rejected / panels <= V.ALPHA + 2 * math.sqrt(V.ALPHA * (1 - V.ALPHA) / panels)


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_a_large_shift_is_always_did_not_forget(share):
    verdicts = {V.judge(*_panel(8, 20, 2.0, share, seed=s), seed=s, **FAST).verdict for s in range(10)}
    assert verdicts == {"did not forget"}


def test_a_copy_of_retraining_forgot_only_where_the_margin_allows(monkeypatch):
    u, r = _panel(64, 100, seed=3)
    result = V.judge(u, r, **FAST)
    assert result.verdict == "forgot" and -V.MARGIN < result.effect_lo < result.effect_hi < V.MARGIN
    monkeypatch.setattr(V, "MARGIN", 0.01)
    assert V.decide(result.p_value, result.effect_lo, result.effect_hi, 100) == "forgot"   # decide's own default
    assert V.decide(result.p_value, result.effect_lo, result.effect_hi, 100, margin=0.01) == "cannot tell"


def test_decide_rules():
    assert V.decide(0.001, -0.1, 0.1, 19) == "too few points"
    assert V.decide(0.001, -0.1, 0.1, 20) == "did not forget"
    assert V.decide(0.5, -0.1, 0.1, 20) == "forgot"
    assert V.decide(0.5, -0.1, 0.3, 20) == "cannot tell"
    assert V.decide(0.5, -0.1, 0.1, 20, noop_p_value=0.2) == "cannot tell"      # the no-op not told apart
    assert V.decide(0.5, -0.1, 0.1, 20, noop_p_value=0.01) == "forgot"
    assert V.decide(0.01, -0.1, 0.1, 20, noop_p_value=0.2) == "did not forget"


def test_the_gate_and_bad_gates():
    u, r = _panel(8, 20, seed=1)
    assert V.judge(u, r, gate=0.9, **FAST).noop_p_value == 0.9
    own = V.judge(u, r, gate=V.SELF, **FAST)
    assert own.noop_p_value == own.p_value
    assert V.judge(u, r, **FAST).noop_p_value is None
    with pytest.raises(ValueError, match=r"gate=1\.5"):
        V.judge(u, r, gate=1.5, **FAST)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least 3 models"):
        V.difference(np.zeros((2, 5)), np.ones((5, 5)))
    with pytest.raises(ValueError, match="same forget examples"):
        V.difference(np.zeros((4, 5)), np.ones((4, 6)))
    with pytest.raises(ValueError, match="non-finite"):
        V.difference(np.full((4, 5), np.inf), np.ones((4, 5)))
    with pytest.raises(ValueError, match="unknown scenario 'x'"):
        V.error_rates(8, 20, "x", 1)
    with pytest.raises(ValueError, match=r"model_share=1\.0"):
        V.simulated_panel(8, 20, 0.0, 1.0, np.random.default_rng(0), model_share=1.0)


def test_a_larger_model_share_widens_the_interval():
    """Examples that move together through a model carry less information: the effect's interval widens."""
    widths = []
    for rho in (0.0, 0.6):
        u, r = V.simulated_panel(16, 50, 0.0, 1.0, np.random.default_rng(7), model_share=rho)
        lo, hi = V.effect_interval(u, r, n_resamples=500)
        widths.append(hi - lo)
    assert widths[1] > 2 * widths[0]


def test_the_test_moves_whole_models_not_single_values():
    """A per-model offset common to every example (sd 2) swamps a shift of 0.4 between groups of 10
    models: the permutation over models does not reject, while a test that took the 600 values as
    independent would."""
    rng = np.random.default_rng(5)
    common = rng.normal(size=(20, 1)) * 2
    u = common[:10] + rng.normal(size=(10, 30)) * 0.3 + 0.4
    r = common[10:] + rng.normal(size=(10, 30)) * 0.3
    assert V.difference(u, r, n_resamples=500).p_shift > 0.05
    assert stats.ttest_ind(u.ravel(), r.ravel()).pvalue < 0.001


def test_adjust_is_benjamini_hochberg_and_keeps_nan():
    p = np.array([0.001, 0.04, np.nan, 0.03, 0.5])
    out = V.adjust(p)
    np.testing.assert_allclose(out[[0, 1, 3, 4]], stats.false_discovery_control([0.001, 0.04, 0.03, 0.5]))
    assert np.isnan(out[2]) and (out[[0, 1, 3, 4]] >= p[[0, 1, 3, 4]]).all()


def test_power_grows_with_models_and_matches_the_simulated_rate():
    r = _panel(64, 50, seed=2)[1]
    assert V.power(r, 8) < V.power(r, 16) < V.power(r, 64)
    hits = [V.difference(*_panel(16, 50, V.MARGIN, seed=s), seed=s, n_resamples=500).p_value <= V.ALPHA
            for s in range(40)]
    predicted = np.mean([V.power(_panel(16, 50, seed=100 + s)[1], 16) for s in range(10)])
    assert abs(np.mean(hits) - predicted) < 0.25      # a normal approximation, within binomial noise of 40 panels


def test_power_curve_and_models_needed():
    u, r = _panel(24, 20, 1.5, seed=4)
    curve = V.power_curve(u, r, draws=10, n_permutations=200)
    assert list(curve) == [4, 6, 8, 12, 16] and curve[4] <= curve[16] == 1.0      # the sizes below N = 24
    assert V.models_needed(curve) is not None and V.models_needed(curve) <= 12
    assert V.models_needed({4: 0.1, 8: 0.5}) is None


def test_f_interval_covers_f_and_degenerates_to_a_point():
    eps = np.random.default_rng(0).uniform(0, 3, 40)
    lo, hi = V.f_interval(eps, 32)
    assert lo <= fg.forget_quality(eps, 32) <= hi
    assert V.f_interval(np.zeros(10), 32) == (1.0, 1.0)


def test_error_rates_are_shares():
    rates = V.error_rates(8, 20, "shift 1 sd", 4, **FAST)
    assert set(rates) == set(V.VERDICTS) and sum(rates.values()) == pytest.approx(1)
    assert rates["did not forget"] == 1.0
