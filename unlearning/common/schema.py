"""The saved record: every key a result may carry, its type, unit and meaning, versioned.

This module is the one definition of the record format. It imports neither torch nor
pandas, so the report generator and any other reader can use it anywhere:

- the experiment builds records with these keys (`unlearning.running.experiment`);
- `finish(record, **context)` completes one with every required key (None where a value
  does not apply) and the current `SCHEMA_VERSION`: the benchmarks' `stamp` and the CLI's
  JSON both go through it;
- `missing(record)` names the required keys a record lacks, for the version it declares;
- `markdown_table()` is the schema table of `docs/schema.md` (a test keeps the two equal);
- `value_range(key)` is the range a numeric key allows, from its unit (`UNIT_RANGES`: seconds, epochs,
  steps, counts ≥ 0; fractions and AUCs in [0, 1]) or named per key (`KEY_RANGES`).

Records are flat: scalars, lists of numbers for per-epoch or per-checkpoint series, and
two nested dicts (`config`, `data_info`, since version 2) saying what produced them. A
method registered by a plug-in may add its own detail keys; they are kept, not checked.

Version history: 1, the first saved benchmark records (committed under reports/runs);
2 adds `config` and `data_info`. Readers accept every version in `VERSIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 2
VERSIONS = (1, 2)
FILE_SCHEMA = "unlearning-bench/run/1"     # the CLI's JSON envelope (its `schema` field)


@dataclass(frozen=True)
class Key:
    """One record key. `since`: the schema version from which every record must carry it
    (None: present only where it applies)."""

    name: str
    type: str
    unit: str
    meaning: str
    since: int | None = None


def _keys(rows: list[tuple], since: int | None) -> list[Key]:
    return [Key(*row, since=since) for row in rows]


# fmt: off
_REQUIRED_V1 = [
    ("schema_version", "int", "", "version of this schema the record follows"),
    ("paper", "str", "", "benchmarks: `000`, `002`, `grid`, `forgetting` or `overhead` (null from the CLI)"),
    ("table", "str", "", "benchmarks: `table1`, `california`, `figure1`, `lr_sweep`, `grid`, `forgetting`, "
                         "`forgetting_sweep`, `overhead`, `ensemble`, `threads` (null from the CLI)"),
    ("profile", "str", "", "benchmark profile: smoke, quick or paper (null from the CLI)"),
    ("dataset", "str", "", "dataset name (a registered dataset, or a description for overhead runs)"),
    ("method", "str", "", "unlearning method (`original` for the control model m_c)"),
    ("removal_size", "int", "points", "points removed (0 for the original model)"),
    ("optimizer", "str", "", "the relabeling optimizer for `random_relabel`, else the training optimizer"),
    ("lr", "float", "", "that optimizer's learning rate"),
    ("seed", "int", "", "seed of the trial (init, shuffling, forget set)"),
    ("trial", "int", "", "1-based position of the seed in the profile's (or the CLI's) seed list"),
    ("device", "str", "", "where the model ran"),
    ("epochs", "int", "epochs", "epochs of the operation (0 for random relabeling)"),
    ("steps", "int", "steps", "optimizer steps"),
    ("samples_processed", "int", "rows", "rows that went through a training step"),
    ("seconds", "float", "s", "wall time of the operation (excludes untimed per-epoch S/d tracking); "
                              "amortised when models were trained together: see `batch_seconds`"),
    ("converged", "bool", "", "the convergence rule was met (null for relabeling: no rule applies)"),
    ("hit_cap", "bool", "", "stopped by the epoch cap without converging: `epochs` is a lower bound"),
    ("collapsed", "bool", "", "constant output and zero gradient: training could not move the model"),
    ("oracle_epochs", "int", "epochs", "naive retraining's epochs on the same forget set"),
    ("oracle_seconds", "float", "s", "naive retraining's seconds on the same forget set"),
    ("oracle_samples", "int", "rows", "naive retraining's samples processed"),
    ("epoch_ratio", "float", "ratio", "epochs / oracle epochs (paper 000's convergence-time ratio)"),
    ("speedup_vs_naive", "float", "ratio", "oracle seconds / seconds (> 1: faster than naive retraining)"),
    ("test_acc", "float", "fraction", "accuracy on the test set (classification)"),
    ("forget_acc", "float", "fraction", "accuracy on the forget set with its true labels"),
    ("total_acc", "float", "fraction", "accuracy on test ∪ forget (paper 002's total)"),
    ("s_to_control", "float", "logit L1", "S(m, m_c, X): logit L1 distance to the control model"),
    ("s_to_oracle", "float", "logit L1", "S(m, m_o, X): logit L1 distance to the oracle"),
    ("d", "float", "logit L1 / point", "deletion metric (S to m_c − S to m_o) / |Y|: > 0 means closer to the oracle"),
]
_REQUIRED_V2 = [
    ("config", "dict", "", "`Config.as_dict()` of the run: every setting, method settings included"),
    ("data_info", "dict", "", "`Data.info` of the data the record was measured on (source, sizes, seeds, choices)"),
]
# forgetting records: the 95 % t interval over the N models of these means (`audit.spread`)
_SPREAD = (("forget_acc", "fraction"), ("retain_acc", "fraction"), ("test_acc", "fraction"), ("forget_mse", "MSE"),
           ("retain_mse", "MSE"), ("test_mse", "MSE"), ("mia_efficacy", "fraction"), ("mia_gap", "fraction"),
           ("loss_auc", "AUC"), ("js_to_oracle", "nats"), ("tow", ""), ("seconds", "s"))
_OVER_MODELS = [(f"{key}_{end}", "float", unit, f"forgetting: {key}'s 95 % t interval over the N models, {side} end")
                for key, unit in _SPREAD for end, side in (("lo", "lower"), ("hi", "upper"))]
_OPTIONAL = [
    ("rule", "str", "", "the convergence rule, in words"),
    ("batch_models", "int", "models", "models trained together (fit_many); 1 when trained alone"),
    ("batch_seconds", "float", "s", "the whole batch's wall time; `seconds` = batch_seconds / batch_models "
                                    "(+ per-model work such as pruning)"),
    ("train_size", "int", "rows", "rows of the (possibly subset) training set"),
    ("test_size", "int", "rows", "rows of the (possibly subset) test set"),
    ("train_acc", "float", "fraction", "accuracy on the whole training set"),
    ("test_mse", "float", "MSE", "mean squared error on the test set (regression)"),
    ("forget_mse", "float", "MSE", "mean squared error on the forget set (regression)"),
    ("total_mse", "float", "MSE", "mean squared error on test ∪ forget (regression)"),
    ("train_mse", "float", "MSE", "mean squared error on the training set (regression)"),
    ("initial_loss", "float", "loss", "the watched loss before the first epoch"),
    ("final_loss", "float", "loss", "the watched loss after the last epoch"),
    ("oracle_converged", "bool", "", "naive retraining met its convergence rule"),
    ("control_epochs", "int", "epochs", "the control model m_c's training epochs"),
    ("control_seconds", "float", "s", "the control model's training seconds"),
    ("control_converged", "bool", "", "the control model met its convergence rule"),
    ("control_hit_cap", "bool", "", "the control model was stopped by the epoch cap"),
    ("control_collapsed", "bool", "", "the control model collapsed"),
    ("speedup_samples", "float", "ratio", "oracle samples / samples"),
    ("d_on", "str", "", "the set X that S and d are measured on: `train`, or `test` where that is costly"),
    ("load_avg_1m", "float", "", "the machine's 1-minute load average when the record was made"),
    ("threads", "int", "threads", "torch intra-op threads the model was trained and evaluated with "
                                  "(`unlearning.training.threads`)"),
    ("init_redraws", "int", "", "initialisations redrawn because the output was constant on the training set"),
    ("oracle_init", "str", "", "naive retraining: `same` init as the control, or `independent`"),
    ("weights_zeroed", "int", "weights", "weight pruning: weights Algorithm 1 zeroed"),
    ("weights_zeroed_per_layer", "list[int]", "weights", "weight pruning: zeroed per Linear layer"),
    ("weights_total", "int", "weights", "weight pruning: weights of the Linear layers"),
    ("prune_seconds", "float", "s", "weight pruning: seconds of the pruning step (inside `seconds`)"),
    ("delta_on", "str", "", "weight pruning: the activation Δ_j indexes (`input` or `output`)"),
    ("set_rule", "str", "", "weight pruning: how a set is pruned (`union` or `sequential`)"),
    ("n_neighbors", "int", "points", "weight pruning: neighbours n"),
    ("thresholds", "list[float]", "", "weight pruning: one threshold per Linear layer"),
    ("k_prime", "int", "labels", "random relabeling: other labels per request"),
    ("l1_final_alpha", "float", "", "ℓ1-sparse: the ℓ1 weight of the last epoch, α/E"),
    ("l1_norm_before", "float", "", "ℓ1-sparse: ‖θ‖₁ of the trained model"),
    ("l1_norm_after", "float", "", "ℓ1-sparse: ‖θ‖₁ after unlearning"),
    ("l1_ratio", "float", "ratio", "ℓ1-sparse: ‖θ‖₁ after / before"),
    ("salun_mask_share", "float", "fraction", "SalUn: share of the model's entries the saliency mask lets change"),
    ("salun_updated_weights", "int", "weights", "SalUn: entries in the saliency mask"),
    ("salun_total_weights", "int", "weights", "SalUn: trainable entries of the model"),
    ("scrub_max_epochs", "int", "epochs", "SCRUB: max passes (ascending the divergence) on the forget set"),
    ("scrub_min_epochs", "int", "epochs", "SCRUB: min passes (γ·CE + α·divergence) on the retain set"),
    ("scrub_max_steps", "int", "steps", "SCRUB: optimizer steps of the max passes"),
    ("scrub_min_steps", "int", "steps", "SCRUB: optimizer steps of the min passes"),
    ("scrub_forget_kl", "float", "nats", "SCRUB: T²·KL(teacher‖student) on the forget set after unlearning"),
    ("newton_lambda", "float", "", "Newton removal: λ, the head's L2 weight per training point"),
    ("newton_sigma", "float", "", "Newton removal: σ of the objective's random perturbation (0: none)"),
    ("newton_heads", "int", "", "Newton removal: convex heads (one per class one-vs-rest; 1 binary / ridge)"),
    ("newton_features", "int", "", "Newton removal: features of the head, the bias feature included"),
    ("newton_fit_seconds", "float", "s", "Newton removal: the head's fit on all training features (amortised)"),
    ("newton_fit_iterations", "int", "steps", "Newton removal: Newton iterations of the head's fit"),
    ("newton_fit_grad_norm", "float", "", "Newton removal: ‖∇L(w; D)‖ after the fit"),
    ("newton_bound", "float", "", "Newton removal: Guo et al.'s data-dependent bound on ‖∇L(w⁻; D∖R)‖"),
    ("newton_grad_norm", "float", "", "Newton removal: the actual ‖∇L(w⁻; D∖R)‖"),
    ("newton_distance_bound", "float", "", "Newton removal: bound / (λ n′), a bound on ‖w⁻ − w*‖"),
    ("newton_step_norm", "float", "", "Newton removal: ‖w⁻ − w‖, the Newton step's length"),
    ("shards", "int", "", "SISA: S, the shards (one constituent model each)"),
    ("slices", "int", "", "SISA: R, the slices of each shard (a checkpoint after each)"),
    ("shards_retrained", "int", "", "SISA: shards the removal retrained (those holding a removed point)"),
    ("slices_retrained", "int", "", "SISA: slices the removal retrained, over every retrained shard"),
    ("shards_emptied", "int", "", "SISA: shards left without a row (dropped from the ensemble)"),
    ("training_seconds", "float", "s", "SISA: wall time of training the shard ensemble (amortised, apart from "
                                       "`seconds`, the removal's)"),
    ("training_epochs", "int", "epochs", "SISA: epochs of training the shard ensemble, every shard and slice"),
    ("training_steps", "int", "steps", "SISA: optimizer steps of training the shard ensemble"),
    ("training_samples", "int", "", "SISA: rows processed training the shard ensemble"),
    ("training_data_passes", "float", "ratio", "SISA: training rows processed / training rows"),
    ("retrain_data_passes", "float", "ratio", "SISA: rows the removal processed / rows that remain"),
    ("loss_series", "list[float]", "loss", "the watched loss after each epoch (`epochs` entries)"),
    ("control_loss_series", "list[float]", "loss", "on oracle records: the control model's loss curve"),
    ("control_initial_loss", "float", "loss", "on oracle records: the control model's loss before training"),
    ("s_to_control_series", "list[float]", "logit L1", "S to m_c before the fine-tune and after each epoch"),
    ("s_to_oracle_series", "list[float]", "logit L1", "S to m_o before the fine-tune and after each epoch"),
    ("d_series", "list[float]", "logit L1 / point", "d before the fine-tune and after each epoch"),
    ("checkpoint_sizes", "list[int]", "points", "paper 002 Figure 1: removals at each checkpoint of the stream"),
    ("checkpoint_test_acc", "list[float]", "fraction", "test accuracy at each checkpoint"),
    ("checkpoint_forget_acc", "list[float]", "fraction", "accuracy on the requests so far at each checkpoint"),
    ("checkpoint_total_acc", "list[float]", "fraction", "total accuracy at each checkpoint"),
    ("checkpoint_seconds", "list[float]", "s", "stream seconds up to each checkpoint"),
    ("flops_per_sample", "float", "FLOP", "benchmarks: counted FLOPs of one training step per sample of the model"),
    ("matmul_gflops", "float", "GFLOP/s", "benchmarks: fp32 GEMM throughput of the device, measured at the start"),
    ("train_gflops", "float", "GFLOP/s", "benchmarks: flops_per_sample x samples_processed / seconds"),
    ("peak_fraction", "float", "ratio", "benchmarks: train_gflops / matmul_gflops"),
    ("checkpoint_eval_seconds", "float", "s", "Figure 1: seconds spent evaluating every checkpoint (not in `seconds`)"),
    ("bare_seconds", "float", "s", "overhead: the plain-torch side"),
    ("overhead_ratio", "float", "ratio", "overhead: ours / plain torch"),
    ("overhead_target", "float", "ratio", "overhead: the ratio aimed at"),
    ("overhead_within_target", "bool", "", "overhead: ratio ≤ target"),
    ("seconds_per_request", "float", "s", "overhead: seconds per relabeling request"),
    ("k", "int", "models", "overhead: models trained at once by fit_many"),
    ("sequential_seconds", "float", "s", "overhead: the same K models trained by K sequential fits"),
    ("thread_budget", "int", "threads", "threads: the CPUs this process was given (`threads.budget`)"),
    ("competitors", "int", "", "threads: competing processes of small torch ops during the loaded timings"),
    ("seconds_alone_1t", "float", "s", "threads: the training with one thread, machine otherwise idle (median)"),
    ("seconds_alone_budget", "float", "s", "threads: the same with `thread_budget` threads"),
    ("seconds_loaded_1t", "float", "s", "threads: with one thread beside the competitors"),
    ("seconds_loaded_budget", "float", "s", "threads: with `thread_budget` threads beside the competitors"),
    ("thread_speedup_alone", "float", "ratio", "threads: seconds_alone_1t / seconds_alone_budget (> 1: threads help)"),
    ("thread_speedup_loaded", "float", "ratio", "threads: seconds_loaded_1t / seconds_loaded_budget"),
    ("load_slowdown_1t", "float", "ratio", "threads: seconds_loaded_1t / seconds_alone_1t"),
    ("load_slowdown_budget", "float", "ratio", "threads: seconds_loaded_budget / seconds_alone_budget"),
    ("speedup", "float", "ratio", "overhead: K sequential fits' seconds / fit_many's seconds (throughput ratio)"),
    ("speedup_target", "float", "ratio", "overhead: the speed-up aimed at"),
    ("speedup_within_target", "bool", "", "overhead: speedup ≥ target"),
    ("forget_regime", "str", "", "forgetting: how the forget set was drawn: `random`, `classwise` or `canaries`"),
    ("n_models", "int", "models", "forgetting: models per group (originals, unlearned, reference retrained); "
                                  "the record's values are means over them"),
    ("retain_acc", "float", "fraction", "forgetting: accuracy on a seeded sample of retain points (the MIA members)"),
    ("retain_mse", "float", "MSE", "forgetting: mean squared error on that retain sample (regression)"),
    ("control_forget_acc", "float", "fraction", "forgetting: the original models' accuracy on the forget set "
                                                "(the labels they trained on)"),
    ("control_retain_acc", "float", "fraction", "forgetting: the original models' accuracy on the retain sample"),
    ("control_test_acc", "float", "fraction", "forgetting: the original models' test accuracy"),
    ("control_forget_mse", "float", "MSE", "forgetting: the original models' forget-set MSE (regression)"),
    ("control_retain_mse", "float", "MSE", "forgetting: the original models' retain-sample MSE (regression)"),
    ("control_test_mse", "float", "MSE", "forgetting: the original models' test MSE (regression)"),
    ("reference_seconds", "float", "s", "forgetting: mean seconds of one reference retrained model (untimed setup)"),
    ("mia_feature", "str", "", "forgetting: the MIA attacker's per-example feature (`confidence`, or `loss`)"),
    ("mia_attacker", "str", "", "forgetting: the MIA attacker (`svc`: SVC(C=3, gamma=auto, rbf), or `logistic`)"),
    ("mia_efficacy", "float", "fraction", "forgetting: share of forget points the attacker calls non-members"),
    ("mia_efficacy_oracle", "float", "fraction", "forgetting: the same for naive retraining from the same originals"),
    ("mia_efficacy_control", "float", "fraction", "forgetting: the same for the original models m_c"),
    ("mia_gap", "float", "fraction", "forgetting: |mia_efficacy − mia_efficacy_oracle| (0 is best)"),
    ("loss_auc", "float", "AUC", "forgetting: ROC AUC of −loss separating forget from test points (0.5: alike)"),
    ("loss_auc_oracle", "float", "AUC", "forgetting: the same for naive retraining"),
    ("loss_auc_control", "float", "AUC", "forgetting: the same for the original models"),
    ("kl_to_oracle", "float", "nats", "forgetting: mean KL(model ‖ oracle of its seed) on the forget set"),
    ("js_to_oracle", "float", "nats", "forgetting: mean Jensen–Shannon divergence to that oracle on the forget set "
                                      "(≤ ln 2; 0 is best)"),
    ("kl_to_oracle_test", "float", "nats", "forgetting: KL to the oracle on the test set"),
    ("js_to_oracle_test", "float", "nats", "forgetting: JS to the oracle on the test set"),
    ("forget_quality", "float", "", "forgetting: F, mean of 2^(−⌊ε/0.5⌋) over the forget set against N retrained "
                                    "reference models (NeurIPS 2023 challenge)"),
    ("forget_quality_ceiling", "float", "", "forgetting: F of a second retrained group at the same N (the ceiling)"),
    ("forget_quality_normalised", "float", "ratio", "forgetting: forget_quality / forget_quality_ceiling"),
    ("epsilon_cap", "int", "", "forgetting: ⌈ln(N − 1)⌉; an example with ε at or above it scores 0"),
    ("epsilon_per_example", "list[float]", "", "forgetting: ε of each forget example, in forget-set order"),
    ("epsilon_mean", "float", "", "forgetting: mean of epsilon_per_example"),
    ("unlearn_score", "float", "", "forgetting: F × retain-utility ratio × test-utility ratio vs the reference models"),
    ("tow", "float", "", "forgetting: tug-of-war Π(1 − |acc − oracle acc|) over forget, retain, test (1 is best)"),
    ("forget_quality_lo", "float", "", "forgetting: F's 95 % bootstrap interval over the forget examples, lower end"),
    ("forget_quality_hi", "float", "", "forgetting: F's 95 % bootstrap interval over the forget examples, upper end"),
    ("forget_quality_ceiling_lo", "float", "", "forgetting: the ceiling's 95 % interval (as F's), lower end"),
    ("forget_quality_ceiling_hi", "float", "", "forgetting: the ceiling's 95 % interval (as F's), upper end"),
    ("forget_quality_null", "float", "", "forgetting: F's mean when unlearned and retrained models are exchangeable, "
                                         "from N alone (`verdict.f_null`)"),
    ("forget_quality_vs_null", "float", "ratio", "forgetting: forget_quality / forget_quality_null (1: as an "
                                                 "exchangeable group on average)"),
    ("verdict", "str", "", "forgetting: `matches retraining`, `memorised`, `over-forgot`, `shifted everywhere`, "
                           "`differs both ways`, `cannot tell` or `too few points`, on this cell alone (a report "
                           "adjusts p across its cells; `unlearning.evaluation.verdict`)"),
    ("p_value", "float", "fraction", "forgetting: the permutation test of exchangeability with the reference models, "
                                     "min(1, 2 min(p_value_shift, p_value_spread)), unadjusted"),
    ("p_value_shift", "float", "fraction", "forgetting: its two-sided p-value on the mean standardised shift of φ"),
    ("p_value_spread", "float", "fraction", "forgetting: its p-value on the mean squared standardised shift of φ"),
    ("effect", "float", "retrained sd", "forgetting: mean over the forget set of (mean φ unlearned − mean φ "
                                        "retrained) / retrained sd of φ, each example's clipped to ±verdict_z_clip "
                                        "(> 0: memorised, < 0: over-forgot)"),
    ("effect_lo", "float", "retrained sd", "forgetting: the effect's 90 % bootstrap interval (models and examples), "
                                           "lower end"),
    ("effect_hi", "float", "retrained sd", "forgetting: the same interval, upper end; `matches retraining` needs it "
                                           "inside ±margin"),
    ("power", "float", "fraction", "forgetting: chance the test rejects a shift of one margin in every example"),
    ("noop_p_value", "float", "fraction", "forgetting: the no-op's p_value on the same panel (the gate)"),
    ("model_share", "float", "fraction", "ρ, the share of φ's variance common to a model: simulated (verdict error "
                                         "rates) or measured on the reference models (forgetting)"),
    ("matches_attainable", "float", "fraction", "forgetting: share of simulated panels of retraining itself (this "
                                                "N, M and ρ) called `matches retraining` (`verdict.attainable`)"),
    ("effect_control", "float", "retrained sd", "forgetting: the effect on the control rows (retain and test samples "
                                                "of the same models; `verdict.controls`)"),
    ("effect_retain", "float", "retrained sd", "forgetting: the effect on the control retain rows"),
    ("effect_test", "float", "retrained sd", "forgetting: the effect on the control test rows"),
    ("effect_excess", "float", "retrained sd", "forgetting: effect − effect_control (the forget set's move beyond "
                                               "the whole model's)"),
    ("p_value_control", "float", "fraction", "forgetting: the permutation test of the control rows' shift"),
    ("p_value_excess", "float", "fraction", "forgetting: the permutation test of effect_excess"),
    ("verdict_z_clip", "float", "retrained sd", "forgetting: each example's standardised shift clipped to ± this "
                                                "(`verdict.Z_CLIP`)"),
    ("verdict_margin", "float", "retrained sd", "forgetting: the equivalence margin (`verdict.MARGIN`)"),
    ("verdict_alpha", "float", "fraction", "forgetting: the test's size (`verdict.ALPHA`)"),
    ("verdict_permutations", "int", "", "forgetting: resamples of the permutation test"),
    ("verdict_adjustment", "str", "", "forgetting: the multiple-testing adjustment behind `verdict`"),
    ("ulira_auc", "float", "AUC", "forgetting, U-LiRA (`unlearning.evaluation.ulira`): ROC AUC of the per-example "
                                  "likelihood ratio telling unlearned from retrained models, over (model, forget "
                                  "example) pairs, each model scored by fits that leave it out (0.5: alike)"),
    ("ulira_auc_lo", "float", "AUC", "forgetting, U-LiRA: the AUC's 95 % percentile bootstrap interval (unlearned "
                                     "models, retrained models, examples; the fits redone on each resample), "
                                     "lower end"),
    ("ulira_auc_hi", "float", "AUC", "forgetting, U-LiRA: the same interval, upper end"),
    ("ulira_tpr_1pct", "float", "fraction", "forgetting, U-LiRA: TPR at the largest FPR ≤ 1 % (null: fewer than "
                                            "100 retrained pairs)"),
    ("ulira_tpr_1pct_lo", "float", "fraction", "forgetting, U-LiRA: its 95 % interval (as the AUC's), lower end"),
    ("ulira_tpr_1pct_hi", "float", "fraction", "forgetting, U-LiRA: the same interval, upper end"),
    ("ulira_tpr_01pct", "float", "fraction", "forgetting, U-LiRA: TPR at the largest FPR ≤ 0.1 % (null: fewer than "
                                             "1000 retrained pairs)"),
    ("ulira_tpr_01pct_lo", "float", "fraction", "forgetting, U-LiRA: its 95 % interval (as the AUC's), lower end"),
    ("ulira_tpr_01pct_hi", "float", "fraction", "forgetting, U-LiRA: the same interval, upper end"),
    ("ulira_vulnerable_points", "int", "points", "forgetting, U-LiRA: forget examples in the most vulnerable tenth "
                                                 "(largest |originals' mean φ − retrained mean φ| / retrained sd; "
                                                 "`ulira.vulnerable`); null without the originals"),
    ("ulira_vulnerable_auc", "float", "AUC", "forgetting, U-LiRA on the most vulnerable tenth of the forget "
                                             "examples (null without the originals): as ulira_auc"),
    ("ulira_vulnerable_auc_lo", "float", "AUC", "forgetting, U-LiRA, vulnerable: as ulira_auc_lo"),
    ("ulira_vulnerable_auc_hi", "float", "AUC", "forgetting, U-LiRA, vulnerable: as ulira_auc_hi"),
    ("ulira_vulnerable_tpr_1pct", "float", "fraction", "forgetting, U-LiRA, vulnerable: as ulira_tpr_1pct"),
    ("ulira_vulnerable_tpr_1pct_lo", "float", "fraction", "forgetting, U-LiRA, vulnerable: as ulira_tpr_1pct_lo"),
    ("ulira_vulnerable_tpr_1pct_hi", "float", "fraction", "forgetting, U-LiRA, vulnerable: as ulira_tpr_1pct_hi"),
    ("ulira_vulnerable_tpr_01pct", "float", "fraction", "forgetting, U-LiRA, vulnerable: as ulira_tpr_01pct"),
    ("ulira_vulnerable_tpr_01pct_lo", "float", "fraction", "forgetting, U-LiRA, vulnerable: as ulira_tpr_01pct_lo"),
    ("ulira_vulnerable_tpr_01pct_hi", "float", "fraction", "forgetting, U-LiRA, vulnerable: as ulira_tpr_01pct_hi"),
    ("ulira_retain_auc", "float", "AUC", "forgetting, U-LiRA on a fixed sample of retain points, which "
                                         "unlearning can expose (null where none scored): as ulira_auc"),
    ("ulira_retain_auc_lo", "float", "AUC", "forgetting, U-LiRA, retain: as ulira_auc_lo"),
    ("ulira_retain_auc_hi", "float", "AUC", "forgetting, U-LiRA, retain: as ulira_auc_hi"),
    ("ulira_retain_tpr_1pct", "float", "fraction", "forgetting, U-LiRA, retain: as ulira_tpr_1pct"),
    ("ulira_retain_tpr_1pct_lo", "float", "fraction", "forgetting, U-LiRA, retain: as ulira_tpr_1pct_lo"),
    ("ulira_retain_tpr_1pct_hi", "float", "fraction", "forgetting, U-LiRA, retain: as ulira_tpr_1pct_hi"),
    ("ulira_retain_tpr_01pct", "float", "fraction", "forgetting, U-LiRA, retain: as ulira_tpr_01pct"),
    ("ulira_retain_tpr_01pct_lo", "float", "fraction", "forgetting, U-LiRA, retain: as ulira_tpr_01pct_lo"),
    ("ulira_retain_tpr_01pct_hi", "float", "fraction", "forgetting, U-LiRA, retain: as ulira_tpr_01pct_hi"),
    ("phi", "list[list[float]]", "", "forgetting: φ (logit confidence) of each model (rows) on each forget example, "
                                     "6 significant digits"),
    ("phi_reference", "list[list[float]]", "", "forgetting, no-op and naive retraining records: φ of the reference "
                                               "models"),
    ("phi_retain", "list[list[float]]", "", "forgetting: φ of each model on the control retain rows"),
    ("phi_test", "list[list[float]]", "", "forgetting: φ of each model on the control test rows"),
    ("phi_reference_retain", "list[list[float]]", "", "forgetting, no-op and naive retraining records: the reference "
                                                      "models' φ on the control retain rows"),
    ("phi_reference_test", "list[list[float]]", "", "forgetting, no-op and naive retraining records: the reference "
                                                    "models' φ on the control test rows"),
    ("power_curve_models", "list[int]", "models", "forgetting, no-op records: N′ of the power curve"),
    ("power_curve", "list[float]", "fraction", "forgetting, no-op records: share of N′-model subsamples whose test "
                                               "rejects at α"),
    ("models_needed", "int", "models", "forgetting, no-op records: smallest N′ with power ≥ 0.8 (null: none "
                                       "below N)"),
    *_OVER_MODELS,
    ("scenario", "str", "", "verdict error rates: the simulated truth (`verdict.SCENARIOS`)"),
    ("shift_sd", "float", "retrained sd", "verdict error rates: the simulated shift of the unlearned models' φ"),
    ("shifted_share", "float", "fraction", "verdict error rates: share of the forget examples shifted"),
    ("panels", "int", "", "verdict error rates: simulated panels behind the rates"),
    ("rate_matches_retraining", "float", "fraction", "verdict error rates: share of the panels called `matches "
                                                     "retraining`"),
    ("rate_memorised", "float", "fraction", "verdict error rates: share called `memorised`"),
    ("rate_over_forgot", "float", "fraction", "verdict error rates: share called `over-forgot`"),
    ("rate_shifted_everywhere", "float", "fraction", "verdict error rates: share called `shifted everywhere`"),
    ("rate_differs_both_ways", "float", "fraction", "verdict error rates: share called `differs both ways`"),
    ("rate_cannot_tell", "float", "fraction", "verdict error rates: share called `cannot tell`"),
    ("rate_too_few_points", "float", "fraction", "verdict error rates: share called `too few points`"),
    ("truth", "str", "", "verdict error rates: the label the simulated truth deserves"),
    ("rate_forgot", "float", "fraction", "verdict error rates before issue 29: share called `forgot`"),
    ("rate_did_not_forget", "float", "fraction", "verdict error rates before issue 29: share called `did not forget`"),
    ("threshold_scale", "float", "ratio", "forgetting sweeps: weight pruning's preset thresholds were multiplied "
                                          "by this"),
    ("rte", "float", "ratio", "forgetting: run-time efficiency, oracle seconds / seconds (null at zero cost)"),
    ("setting", "str", "", "forgetting: `preset` (the method's preset settings) or `tuned` (the best point of its "
                           "search, benchmarks/tuned/<dataset>.json)"),
    ("tuned_point", "str", "", "tuned cells: the point, `knob=value, ...`"),
    ("tuned_score", "float", "ratio", "tuned cells: the point's score on the search's validation panels "
                                      "(`tuning_objective`)"),
    ("tuning_trials", "int", "", "tuned cells: trials of the method's search"),
    ("tuning_seconds", "float", "s", "tuned cells: wall time of the method's whole search (its re-scores included)"),
    ("tuning_n_models", "int", "models", "tuned cells: models per group of the search's validation panels"),
    ("tuning_objective", "str", "", "tuned cells: what the search optimised: `distance` (from retraining, lower is "
                                    "better, per regime) or `unlearn_score` (the challenge score on one canary "
                                    "panel, higher is better: searches before issue 30)"),
    ("tuning_regime", "str", "", "tuned cells: the regime the point was searched on (`legacy`: one canary panel "
                                 "for every regime)"),
    ("tuning_sizes", "list[int]", "points", "tuned cells: the removal sizes of the regime's validation panels"),
    ("tuned_rescore", "float", "ratio", "tuned cells: the point's distance from retraining on the second, "
                                        "independent validation panels it was chosen on"),
    ("tuned_rescore_lo", "float", "ratio", "tuned cells: low end of its interval (each panel's effect interval "
                                           "folded into a distance, averaged over the panels)"),
    ("tuned_rescore_hi", "float", "ratio", "tuned cells: high end of that interval"),
    ("tuned_feasible", "bool", "", "tuned cells: the point kept the utility floor (`tuning.UTILITY_FLOOR`) on the "
                                   "second panels"),
    ("tuning_preset_rescore", "float", "ratio", "tuned cells: the method's preset's distance on the second panels "
                                                "(null where the preset is not a point of its space)"),
    ("tuning_noop_score", "float", "ratio", "tuned cells: the no-op's distance on the same second panels"),
    ("tuning_convergence", "list[float]", "ratio", "tuned cells: the best feasible validation distance after each "
                                                   "trial (null before the first feasible one)"),
]
# fmt: on

KEYS: tuple[Key, ...] = tuple(_keys(_REQUIRED_V1, 1) + _keys(_REQUIRED_V2, 2) + _keys(_OPTIONAL, None))
BY_NAME = {k.name: k for k in KEYS}
NUMERIC = tuple(k.name for k in KEYS if k.type in ("int", "float") and k.name != "schema_version")
TEXT = tuple(k.name for k in KEYS if k.type == "str")

# Timings: every key in seconds, every GFLOP/s, and the keys computed from them or from the machine's state (ratios of
# seconds, targets met, the load average, the thread counts the machine gave). Everything else a record holds is
# computed from seeds and data and is the same in every run of one commit, torch version and thread policy: what a
# sharded run must reproduce cell by cell (`unlearning.bench.shards`), and what the release check compares with its
# tolerance (`unlearning.bench.report.history`); timings are compared by pytest-benchmark's own
# --benchmark-compare-fail.
TIMING_UNITS = ("s", "GFLOP/s", "threads")
TIMING_DERIVED = ("speedup_vs_naive", "load_avg_1m", "peak_fraction", "overhead_ratio", "overhead_within_target",
                  "thread_speedup_alone", "thread_speedup_loaded", "load_slowdown_1t", "load_slowdown_budget",
                  "speedup", "speedup_within_target", "rte")
TIMING = tuple(k.name for k in KEYS if k.unit in TIMING_UNITS or k.name in TIMING_DERIVED)


# The Parquet export's column types (`unlearning.bench.report.export`): nested values (the two dicts, series of series)
# are JSON text.
ARROW_TYPES = {"int": "int64", "float": "double", "bool": "bool", "str": "string", "dict": "string",
               "list[float]": "list<double>", "list[int]": "list<int64>", "list[list[float]]": "string"}
JSON_TYPES = ("dict", "list[list[float]]")


def arrow_type(name: str) -> str:
    """The Arrow type of key `name`'s column in records.parquet; KeyError for a key this schema does not define."""
    return ARROW_TYPES[BY_NAME[name].type]


def is_timing(name: str) -> bool:
    """A key whose value is a timing or depends on the machine's speed or state (`TIMING`)."""
    return name in TIMING


# The values a numeric key (or each number of a series) can take: (lowest, highest), None for no bound. A key's range
# comes from its unit; keys without a unit that are still bounded are named in KEY_RANGES. Anything else (d, seeds,
# thresholds) is unbounded. A reader treats a value outside its range like a non-finite one: the record is wrong.
UNIT_RANGES: dict[str, tuple[float | None, float | None]] = {
    **dict.fromkeys(("s", "epochs", "steps", "rows", "points", "weights", "models", "labels"), (0, None)),
    **dict.fromkeys(("ratio", "MSE", "loss", "nats", "logit L1", "FLOP", "GFLOP/s"), (0, None)),
    "fraction": (0, 1), "AUC": (0, 1), "threads": (1, None),
}
KEY_RANGES: dict[str, tuple[float | None, float | None]] = {
    "trial": (1, None), "lr": (0, None), "load_avg_1m": (0, None), "init_redraws": (0, None), "competitors": (0, None),
    "epsilon_cap": (0, None), "epsilon_per_example": (0, None), "epsilon_mean": (0, None),
    "forget_quality": (0, 1), "forget_quality_ceiling": (0, 1), "tow": (0, 1), "unlearn_score": (0, None),
    **dict.fromkeys(("forget_quality_lo", "forget_quality_hi", "forget_quality_ceiling_lo",
                     "forget_quality_ceiling_hi", "forget_quality_null"), (0, 1)),
    "forget_quality_vs_null": (0, None), "tow_lo": (0, 1), "tow_hi": (0, 1), "verdict_margin": (0, None),
    "verdict_permutations": (1, None), "ulira_vulnerable_points": (1, None),
    "panels": (1, None),
}


def value_range(name: str) -> tuple[float | None, float | None]:
    """(lowest, highest) a value of key `name` may take (None: no bound); (None, None) for keys not defined here."""
    key = BY_NAME.get(name)
    if key is None or key.type not in ("int", "float", "list[int]", "list[float]"):
        return (None, None)
    return KEY_RANGES.get(name, UNIT_RANGES.get(key.unit, (None, None)))


def range_text(name: str) -> str:
    """The range of key `name` in words: "≥ 0", "in [0, 1]", "" when unbounded."""
    low, high = value_range(name)
    if low is not None and high is not None:
        return f"in [{low:g}, {high:g}]"
    if low is not None:
        return f"≥ {low:g}"
    return f"≤ {high:g}" if high is not None else ""


def required(version: int = SCHEMA_VERSION) -> tuple[str, ...]:
    """The keys every record of schema `version` carries; ValueError for an unknown version."""
    if version not in VERSIONS:
        raise ValueError(f"unknown record schema_version {version!r}; allowed: {', '.join(map(str, VERSIONS))}")
    return tuple(k.name for k in KEYS if k.since is not None and k.since <= version)


REQUIRED = required()


def missing(record: dict) -> list[str]:
    """Required keys `record` lacks for the schema version it declares (all of them if it declares none)."""
    version = record.get("schema_version")
    keys = required(version) if version in VERSIONS else REQUIRED
    return [k for k in keys if k not in record]


def finish(record: dict, **context) -> dict:
    """`record` with every required key (None where it does not apply), `context` on top, and the version."""
    out = dict.fromkeys(REQUIRED)
    out.update(record)
    out.update(context)
    out["schema_version"] = SCHEMA_VERSION
    return out


def undocumented(record: dict) -> list[str]:
    """Keys of `record` this schema does not define (a plug-in method's details, or a mistake)."""
    return [k for k in record if k not in BY_NAME]


def markdown_table() -> str:
    """The schema as the Markdown table of docs/schema.md."""
    lines = ["| key | type | unit | required | meaning |", "|---|---|---|---|---|"]
    for k in KEYS:
        since = f"since v{k.since}" if k.since is not None else "where it applies"
        lines.append(f"| `{k.name}` | {k.type} | {k.unit} | {since} | {k.meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":     # python -m unlearning.common.schema: print the table
    print(markdown_table(), end="")
