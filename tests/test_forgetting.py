"""Forgetting metrics against hand-computed values and independent implementations (scipy, brute force)."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from unlearning.evaluation import forgetting as fg

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [-2.0, 4.0, 0.0], [1.0, 1.0, 1.0]])
LABELS = torch.tensor([0, 2, 0, 1])


def softmax64(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- per-example features -------------------------------------------------------------------

def test_features_match_their_formulas_row_by_row():
    p, y = softmax64(LOGITS), LABELS.numpy()
    expect = {"confidence": [], "entropy": [], "modified_entropy": [], "correctness": [], "loss": []}
    for row, label in zip(p, y, strict=True):
        expect["confidence"].append(row[label])
        expect["entropy"].append(-sum(pi * math.log(pi) for pi in row))
        expect["modified_entropy"].append(-(1 - row[label]) * math.log(row[label])
                                          - sum(pi * math.log(1 - pi) for i, pi in enumerate(row) if i != label))
        expect["correctness"].append(float(np.argmax(row) == label))
        expect["loss"].append(math.log(row[label]))
    for kind, values in expect.items():
        np.testing.assert_allclose(fg.mia_features(LOGITS, LABELS, "multiclass", kind), values, rtol=1e-9,
                                   err_msg=kind)


def test_modified_entropy_is_song_and_mittal_not_the_log_p_variant():
    # the variant some toolkits ship takes ln p_i where ln(1 − p_i) belongs
    p, y = softmax64(LOGITS), LABELS.numpy()
    wrong = [-(1 - r[t]) * math.log(r[t]) - sum(pi * math.log(pi) for i, pi in enumerate(r) if i != t)
             for r, t in zip(p, y, strict=True)]
    got = fg.mia_features(LOGITS, LABELS, "multiclass", "modified_entropy")
    assert not np.allclose(got[:3], wrong[:3])
    # a confident, correct row has a modified entropy near 0; a confident wrong one a large one
    sure = fg.mia_features(torch.tensor([[30.0, 0.0], [30.0, 0.0]]), torch.tensor([0, 1]), "multiclass",
                           "modified_entropy")
    assert sure[0] < 1e-9 and sure[1] > 25


def test_binary_features_use_the_two_class_distribution_of_one_logit():
    z, y = torch.tensor([[1.5], [-0.3], [4.0]]), torch.tensor([1.0, 1.0, 0.0])
    two = torch.cat([torch.zeros(3, 1), z], dim=1)          # softmax((0, z)) = (1 − σ(z), σ(z))
    for kind in fg.FEATURES:
        np.testing.assert_allclose(fg.mia_features(z, y, "binary", kind),
                                   fg.mia_features(two, y.long(), "multiclass", kind), rtol=1e-12, err_msg=kind)


def test_regression_has_the_loss_feature_only():
    out, y = torch.tensor([[0.2], [0.9]]), torch.tensor([0.5, 0.9])
    np.testing.assert_allclose(fg.mia_features(out, y, "regression"), [-0.09, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="for regression use 'loss'"):
        fg.mia_features(out, y, "regression", "confidence")
    with pytest.raises(ValueError, match="unknown MIA feature 'margin'; allowed: confidence"):
        fg.mia_features(LOGITS, LABELS, "multiclass", "margin")


# --- MIA-efficacy and the loss attack ----------------------------------------------------------

def test_mia_efficacy_calls_member_like_points_members_and_test_like_points_non_members():
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(0.95, 0.02, 3000), rng.normal(0.5, 0.1, 300)   # unbalanced on purpose
    for name in fg.ATTACKERS:
        assert fg.mia_efficacy(members, non_members, rng.normal(0.95, 0.02, 100), attacker_name=name) < 0.05
        assert fg.mia_efficacy(members, non_members, rng.normal(0.5, 0.1, 100), attacker_name=name) > 0.95
    assert fg.mia_efficacy([1.0, 1.0], [1.0, 1.0], [0.3]) == 0.5            # nothing to learn from


def test_mia_efficacy_is_seeded_and_checks_its_input():
    rng = np.random.default_rng(1)
    m, n, t = rng.normal(0.7, 0.2, 500), rng.normal(0.5, 0.2, 500), rng.normal(0.6, 0.2, 200)
    a = fg.mia_efficacy(m, n, t, seed=3, max_per_side=100)
    assert a == fg.mia_efficacy(m, n, t, seed=3, max_per_side=100)
    with pytest.raises(ValueError, match="non_members is empty"):
        fg.mia_efficacy(m, [], t)
    with pytest.raises(ValueError, match="unknown MIA attacker 'forest'; allowed: svc, logistic"):
        fg.mia_efficacy(m, n, t, attacker_name="forest")
    with pytest.raises(ValueError, match="targets holds non-finite"):
        fg.mia_efficacy(m, n, [np.nan])


def test_loss_auc_is_the_share_of_forget_test_pairs_the_forget_point_wins():
    forget, test = np.array([0.1, 0.5, 0.5, 2.0]), np.array([0.3, 0.5, 1.0])
    pairs = [(f < t) + 0.5 * (f == t) for f in forget for t in test]      # Mann–Whitney by hand
    assert fg.loss_auc(forget, test) == pytest.approx(np.mean(pairs))
    assert fg.loss_auc([0.01, 0.02], [1.0, 2.0]) == 1.0
    assert fg.loss_auc([3.0, 4.0], [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="needs forget and test points"):
        fg.loss_auc([], [1.0])


# --- divergences ------------------------------------------------------------------------------

def test_divergences_match_scipy():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 10, generator=gen) * 3, torch.randn(50, 10, generator=gen) * 3
    p, q = softmax64(a), softmax64(b)
    got = fg.divergences(a, b, "multiclass")
    assert got["kl"] == pytest.approx(rel_entr(p, q).sum(axis=1).mean(), rel=1e-9)
    assert got["js"] == pytest.approx((jensenshannon(p, q, axis=1) ** 2).mean(), rel=1e-7)
    assert fg.divergences(b, a, "multiclass")["js"] == pytest.approx(got["js"], rel=1e-12)   # symmetric
    assert fg.divergences(b, a, "multiclass")["kl"] != pytest.approx(got["kl"])              # KL is not


def test_divergences_bounds_identical_and_disjoint():
    same = fg.divergences(LOGITS, LOGITS, "multiclass")
    assert same["kl"] == pytest.approx(0, abs=1e-12) and same["js"] == pytest.approx(0, abs=1e-12)
    far = fg.divergences(torch.tensor([[200.0, -200.0]]), torch.tensor([[-200.0, 200.0]]), "multiclass")
    assert far["js"] == pytest.approx(math.log(2), rel=1e-9) and far["js"] <= math.log(2)
    assert far["kl"] == pytest.approx(400, rel=1e-6)           # finite: computed from log-probabilities
    z1, z2 = torch.tensor([[0.3], [2.0]]), torch.tensor([[-1.0], [0.5]])
    two = fg.divergences(torch.cat([torch.zeros(2, 1), z1], 1), torch.cat([torch.zeros(2, 1), z2], 1), "multiclass")
    assert fg.divergences(z1, z2, "binary") == pytest.approx(two)
    with pytest.raises(ValueError, match="classification tasks, not 'regression'"):
        fg.divergences(z1, z2, "regression")


# --- per-example ε and F ----------------------------------------------------------------------

def test_logit_confidence_is_log_odds_of_the_true_class():
    p, y = softmax64(LOGITS), LABELS.numpy()
    want = [math.log(r[t]) - math.log(1 - r[t]) for r, t in zip(p, y, strict=True)]
    np.testing.assert_allclose(fg.logit_confidence(LOGITS, LABELS, "multiclass"), want, rtol=1e-9)
    np.testing.assert_allclose(fg.logit_confidence(torch.tensor([[1.5], [1.5]]), torch.tensor([1.0, 0.0]), "binary"),
                               [1.5, -1.5], rtol=1e-12)
    np.testing.assert_allclose(fg.logit_confidence(torch.tensor([0.5]), torch.tensor([0.2]), "regression"), [-0.09],
                               rtol=1e-6)


def test_attack_epsilon_exact_values():
    d = fg.DELTA
    assert fg.attack_epsilon([0.1], [0.2])[0] == pytest.approx(max(math.log(0.9 - d) - math.log(0.2),
                                                                    math.log(0.8 - d) - math.log(0.1)))
    assert fg.attack_epsilon([0.0], [0.0])[0] == math.inf        # perfect separation
    assert fg.attack_epsilon([0.0], [0.3])[0] == -math.inf       # one zero rate: discarded
    assert fg.attack_epsilon([1.0], [1.0])[0] == math.inf        # always wrong: its complement separates


def test_epsilon_of_a_hand_made_example():
    # u = unlearned, r = retrained; the best single threshold is t = 1: FNR = 1/3, FPR = 1/3
    u, r = np.array([[1.0], [2.0], [3.0]]), np.array([[0.0], [0.5], [2.5]])
    eps = fg.epsilon_per_example(u, r, double=False)
    assert eps[0] == pytest.approx(math.log(2 / 3 - fg.DELTA) - math.log(1 / 3))
    assert fg.forget_quality(eps, 3) == 0.5                       # H = 2^-⌊0.69/0.5⌋; cap ⌈ln 2⌉ = 1
    # no interval separates these (2.5 sits between 2 and 3); with r's 2.5 moved to 4, (0.5, 3] does
    assert fg.epsilon_per_example(u, r)[0] == pytest.approx(eps[0])
    r[2] = 4.0
    assert fg.epsilon_per_example(u, r, double=False)[0] == pytest.approx(eps[0])
    assert fg.epsilon_per_example(u, r)[0] == fg.EPSILON_MAX


def brute_force_epsilon(u, r, delta, double):
    """ε of one example by looping over every threshold (pair), written without numpy tricks."""
    ts = [-math.inf, *sorted([*u, *r])]
    attacks = [(lambda v, t=t: v > t) for t in ts]
    if double:
        attacks += [(lambda v, a=a, b=b: a < v <= b) for i, a in enumerate(ts) for b in ts[i:]]
    best = -math.inf
    for positive in attacks:
        fpr = sum(positive(v) for v in r) / len(r)
        fnr = sum(not positive(v) for v in u) / len(u)
        if fpr == 0 and fnr == 0:
            best = math.inf
        elif fpr == 0 or fnr == 0:
            continue
        else:
            terms = [math.log(1 - delta - a) - math.log(b) for a, b in ((fpr, fnr), (fnr, fpr)) if 1 - delta - a > 0]
            best = max(best, *terms) if terms else math.inf
    return min(max(best, 0.0), fg.EPSILON_MAX)


@pytest.mark.parametrize("double", [False, True])
def test_epsilon_matches_a_brute_force_implementation(double):
    rng = np.random.default_rng(7)
    u, r = rng.normal(0.4, 1, (6, 12)).round(1), rng.normal(0, 1, (5, 12)).round(1)    # ties on purpose
    want = [brute_force_epsilon(u[:, j], r[:, j], fg.DELTA, double) for j in range(12)]
    np.testing.assert_allclose(fg.epsilon_per_example(u, r, double=double), want, rtol=1e-12)


def test_forget_quality_points_and_cap():
    eps = [0.0, 0.49, 0.5, 1.2, 3.9, 4.0, 50.0]
    assert fg.epsilon_cap(32) == 4
    assert fg.forget_quality(eps, 32) == pytest.approx(np.mean([1, 1, 0.5, 0.25, 2 ** -7, 0, 0]))
    with pytest.raises(ValueError, match="at least 3 models per group"):
        fg.forget_quality(eps, 2)


def test_same_distribution_scores_high_and_a_shifted_one_low():
    # two groups of one distribution: the best single threshold's ε is biased up to ~ln 3
    # and F lands near 0.4, not 1 (why every F is reported beside its ceiling)
    rng = np.random.default_rng(0)
    n, s = 32, 400
    ceiling_eps = fg.epsilon_per_example(rng.normal(size=(n, s)), rng.normal(size=(n, s)), double=False)
    assert 0.8 < ceiling_eps.mean() < 1.3
    ceiling = fg.forget_quality(ceiling_eps, n)
    assert 0.3 < ceiling < 0.5
    shifted = fg.forget_quality(fg.epsilon_per_example(rng.normal(2, 1, (n, s)), rng.normal(size=(n, s)),
                                                       double=False), n)
    assert shifted < ceiling / 5
    with pytest.raises(ValueError, match="same examples"):
        fg.epsilon_per_example(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        fg.epsilon_per_example(np.full((4, 1), np.inf), np.zeros((4, 1)))


# --- composites ----------------------------------------------------------------------------------

def test_score_tow_and_rte():
    assert fg.unlearn_score(0.5, [0.9, 0.9], [1.0], [0.8], [0.8]) == pytest.approx(0.45)
    assert math.isnan(fg.unlearn_score(0.5, [0.9], [0.0], [0.8], [0.8]))
    o = {"forget": 0.9, "retain": 1.0, "test": 0.95}
    assert fg.tug_of_war(o, o) == 1.0
    assert fg.tug_of_war({"forget": 1.0, "retain": 1.0, "test": 0.85}, o) == pytest.approx(0.9 * 0.9)
    assert fg.rte(10.0, 2.0) == 5.0 and fg.rte(10.0, 0.0) is None
