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


def _panel(n, m, shift_sd=0.0, share=1.0, seed=0, **scenario):
    return V.simulated_panel(n, m, V.Scenario(shift_sd, share, **scenario), np.random.default_rng(seed))[:2]


def _full(n, m, scenario, seed=0, rho=V.MODEL_SHARE):
    """(u, r, uc_parts, rc_parts) of a `SCENARIOS` panel."""
    return V.simulated_panel(n, m, V.SCENARIOS[scenario], np.random.default_rng(seed), rho)


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
def test_a_large_shift_is_memorised(share):
    verdicts = {V.judge(*_panel(8, 20, 2.0, share, seed=s), seed=s, **FAST).verdict for s in range(10)}
    assert verdicts == {V.MEMORISED}


@pytest.mark.parametrize(("scenario", "label", "at_least"), [
    ("over-forgot 0.5 sd", V.OVER_FORGOT, 5), ("shifted everywhere -1 sd", V.EVERYWHERE, 5),
    ("shift 1 sd", V.MEMORISED, 5), ("spread 1.5x sd", V.BOTH_WAYS, 3)])
def test_each_way_of_missing_gets_its_label(scenario, label, at_least):
    """At N = 32, M = 100 each simulated miss is named by the way it missed in most of 6 panels (a spread-only
    change is the hardest to see: the rest of its panels are not told apart), and never by another way."""
    got = [V.judge(u, r, uc_parts=uc, rc_parts=rc, seed=s, **FAST).verdict
           for s, (u, r, uc, rc) in enumerate(_full(32, 100, scenario, seed=s) for s in range(6))]
    assert got.count(label) >= at_least and not set(got) & (set(V.MISSED) - {label}), got
    assert V.SCENARIOS[scenario].truth == label


def test_without_control_rows_a_global_shift_reads_as_over_forgetting():
    """The control rows are what tell a whole-model shift from over-forgetting the forget set."""
    u, r, uc, rc = _full(32, 100, "shifted everywhere -1 sd", seed=1)
    assert V.judge(u, r, **FAST).verdict == V.OVER_FORGOT
    judged = V.judge(u, r, uc_parts=uc, rc_parts=rc, **FAST)
    assert judged.verdict == V.EVERYWHERE and judged.controls.p_control <= V.ALPHA < judged.controls.p_excess
    assert judged.controls.effect == pytest.approx(np.mean(judged.controls.effect_parts), rel=0.2)
    assert judged.record()["effect_retain"] == judged.controls.effect_parts[0]


def test_a_collapsed_model_has_a_finite_bounded_effect():
    """Gradient ascent's collapsed models (φ ≈ −1e4) against retrained models that agree to the recorded digits
    (sd 0 at some examples) gave effects of −2.6e11 sd; each example's shift is now clipped to ±Z_CLIP."""
    u, r = _panel(8, 30, seed=2)
    r[:, :5] = 3.0                                              # the retrained models agree exactly here
    collapsed = np.full_like(u, -1e4)
    judged = V.judge(collapsed, r, **FAST)
    assert judged.effect == -V.Z_CLIP and math.isfinite(judged.effect_lo) and judged.verdict == V.OVER_FORGOT
    assert V.spread(collapsed, r) == pytest.approx(V.Z_CLIP ** 2)


def test_diverged_models_are_told_apart():
    """Gradient ascent's diverged models on digits (φ up to ±1e22, chance accuracy) read 'cannot tell' with p = 0.98
    before φ was bounded: a permutation that moved them into the retrained group inflated its sd until every
    permutation saturated at ±Z_CLIP too. With φ clipped to ±PHI_CLIP they are told apart."""
    rng = np.random.default_rng(4)
    u, r = _panel(16, 40, seed=4)
    diverged = rng.choice([-1.0, 1.0], size=u.shape) * 10.0 ** rng.uniform(3, 22, size=u.shape)
    judged = V.judge(diverged, r, **FAST)
    assert judged.p_value <= V.ALPHA and judged.verdict in V.MISSED and abs(judged.effect) <= V.Z_CLIP
    assert V.bounded([[1e22, -np.inf]]).tolist() == [[V.PHI_CLIP, -np.inf]]      # non-finite left for _check


def test_the_phi_bound_never_touches_simulated_panels():
    """The error rates are measured on simulated φ that the bound leaves as they are."""
    rng = np.random.default_rng(0)
    top = max(np.abs(np.concatenate([a.ravel() for a in (u, r, *uc, *rc)])).max()
              for name in V.SCENARIOS for _ in range(20)
              for u, r, uc, rc in [V.simulated_panel(32, 100, V.SCENARIOS[name], rng, 0.65)])
    assert top < V.PHI_CLIP / 2


def test_a_copy_of_retraining_matches_only_where_the_margin_allows(monkeypatch):
    u, r = _panel(64, 100, seed=4)
    result = V.judge(u, r, **FAST)
    assert result.verdict == V.MATCHES and -V.MARGIN < result.effect_lo < result.effect_hi < V.MARGIN
    monkeypatch.setattr(V, "MARGIN", 0.01)
    assert V.decide(result.p_value, result.effect_lo, result.effect_hi, 100) == V.MATCHES   # decide's own default
    assert V.decide(result.p_value, result.effect_lo, result.effect_hi, 100, margin=0.01) == V.CANNOT_TELL


def test_decide_rules():
    assert V.decide(0.001, -0.1, 0.1, 19) == V.TOO_FEW
    assert V.decide(0.001, 0.1, 0.3, 20) == V.MEMORISED                      # the direction: the interval's middle
    assert V.decide(0.001, -0.3, -0.1, 20) == V.OVER_FORGOT
    assert V.decide(0.001, -0.3, -0.1, 20, effect=0.2) == V.MEMORISED        # or the effect where given
    assert V.decide(0.001, 0.1, 0.3, 20, p_shift=0.3) == V.BOTH_WAYS          # only the spread statistic rejected
    assert V.decide(0.001, 0.1, 0.3, 20, p_shift=0.02) == V.MEMORISED         # the shift did too (≤ α / 2)
    assert V.decide(0.001, -0.3, -0.1, 20, p_control=0.01, p_excess=0.4, excess=-0.1) == V.EVERYWHERE
    assert V.decide(0.001, -0.3, -0.1, 20, p_control=0.01, p_excess=0.01, excess=-2.0) == V.OVER_FORGOT
    assert V.decide(0.001, -0.3, -0.1, 20, p_control=0.01, p_excess=0.01, excess=1.0) == V.EVERYWHERE
    # a significant excess smaller than the margin is still the whole model's shift (salun, digits random n=100)
    assert V.decide(0.001, -5.0, -4.4, 20, effect=-4.7, p_control=0.001, p_excess=0.001, excess=-0.16) == V.EVERYWHERE
    assert V.decide(0.001, -5.0, -4.4, 20, effect=-4.7, p_control=0.001, p_excess=0.001, excess=-0.25) == V.OVER_FORGOT
    assert V.decide(0.001, -0.3, -0.1, 20, p_control=0.3, p_excess=0.5, excess=0.0) == V.OVER_FORGOT
    assert V.decide(0.5, -0.1, 0.1, 20) == V.MATCHES
    assert V.decide(0.5, -0.1, 0.3, 20) == V.CANNOT_TELL
    assert V.decide(0.5, -0.1, 0.1, 20, noop_p_value=0.2) == V.CANNOT_TELL      # the no-op not told apart
    assert V.decide(0.5, -0.1, 0.1, 20, noop_p_value=0.01) == V.MATCHES
    assert V.decide(0.01, 0.1, 0.2, 20, noop_p_value=0.2) == V.MEMORISED
    assert set(V.MEANINGS) == set(V.VERDICTS)


def test_matches_is_unattainable_where_models_move_together():
    """At N = 16, M = 20 and ρ = 0.65 (MNIST's classwise panels) no simulated copy of retraining is called
    `matches retraining`; at N = 32, M = 100, ρ = 0.06 most are."""
    assert V.attainable(16, 16, 20, 0.65, panels=20) == 0.0
    assert V.attainable(32, 32, 100, 0.06, panels=20) >= 0.7
    assert V.attainable(16, 16, 5, 0.0) is None


def test_model_share_is_measured():
    for rho in (0.0, 0.6):
        r = _full(64, 200, "no difference", rho=rho)[1]
        assert V.model_share(r) == pytest.approx(rho, abs=0.12)


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
        V.simulated_panel(8, 20, V.Scenario(), np.random.default_rng(0), model_share=1.0)
    with pytest.raises(ValueError, match=r"scenario=0\.5"):
        V.simulated_panel(8, 20, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="same models"):
        V.controls(np.zeros((4, 5)), np.ones((4, 5)), [np.zeros((3, 2))], [np.ones((4, 2))])


def test_a_larger_model_share_widens_the_interval():
    """Examples that move together through a model carry less information: the effect's interval widens."""
    widths = []
    for rho in (0.0, 0.6):
        u, r = V.simulated_panel(16, 50, V.Scenario(), np.random.default_rng(7), model_share=rho)[:2]
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
    assert rates[V.MEMORISED] == 1.0
