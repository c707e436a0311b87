"""The verdict rule's error rates, measured: simulated panels whose truth is known
(`unlearning.evaluation.verdict.SCENARIOS`: no difference, a shift of 0.25 / 0.5 / 1 retrained sd in every
forget example, half the examples shifted by 1 sd, over-forgetting by 0.5 sd, the whole model shifted by −1 sd,
the unlearned models' spread 1.5× the retrained models') at each (N models, M forget examples, ρ the share
of φ's variance common to a model) of the profile's `error_settings`, `error_panels` panels per cell,
each judged by the rule the audit uses
(`verdict.judge` with its resamples; no no-op gate). One record per setting and scenario: the
share of panels given each verdict. The report's `verdict_error_rates` table prints them with
their Clopper–Pearson intervals beside the forgetting table.

Targets (issues 20, 29): size, P(any rejection | no difference) ≤ 5 %; P(matches retraining | a shift of one margin)
≤ 5 %; each scenario's own label (`Scenario.truth`) the most frequent where the test has the power to see it.
"""

from __future__ import annotations

import pytest

from unlearning.evaluation import verdict

from .lab import stamp
from .profiles import active

SHARES_NOTHING = True      # each cell simulates its own panels: a shard cut may fall anywhere (benchmarks/order.py)


def pytest_generate_tests(metafunc):
    if "error_case" in metafunc.fixturenames:
        f = active(metafunc.config).forgetting
        metafunc.parametrize("error_case", [
            pytest.param((n, m, rho, name),
                         id=f"simulated-N{n}-M{m}-rho{rho:g}-{name.split(' (')[0].replace(' ', '_')}")
            for n, m, rho in f.error_settings for name in verdict.SCENARIOS])


def test_verdict_error_rates(benchmark, profile, progress, error_case):
    n_models, n_forget, rho, scenario = error_case
    panels = profile.forgetting.error_panels
    rates = benchmark.pedantic(verdict.error_rates, args=(n_models, n_forget, scenario, panels),
                               kwargs={"model_share": rho}, rounds=1, iterations=1)
    truth = verdict.SCENARIOS[scenario]
    stamp(benchmark, profile, paper="forgetting", table="verdict_error_rates", record={
        "dataset": "simulated", "method": "verdict", "n_models": n_models, "removal_size": n_forget,
        "scenario": scenario, "shift_sd": truth.shift,
        "shifted_share": truth.share, "truth": truth.truth, "panels": panels, "model_share": rho,
        "verdict_margin": verdict.MARGIN, "verdict_alpha": verdict.ALPHA,
        "verdict_permutations": verdict.N_PERMUTATIONS, "verdict_z_clip": verdict.Z_CLIP,
        **{f"rate_{v.replace(' ', '_').replace('-', '_')}": rates[v] for v in verdict.VERDICTS}})
    progress(f"N={n_models} M={n_forget} ρ={rho:g} {scenario}, {panels} panels: " +
             ", ".join(f"{v} {rates[v]:.3f}" for v in verdict.VERDICTS if rates[v]))
    assert abs(sum(rates.values()) - 1) < 1e-9 and all(0 <= r <= 1 for r in rates.values())
