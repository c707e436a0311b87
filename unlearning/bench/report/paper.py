"""The papers' published numbers, as printed (texts in ../shared/papers/).

Paper 000: *Approximate Data Deletion via Weight Pruning* (Orts, Sanchez, Song), Table 1
(synthetic) and the California housing table. Paper 002: *Random Relabeling for Efficient
Machine Unlearning* (Li, Ghosh), Table 1 (MNIST, accuracies in %).
"""

from __future__ import annotations

# Paper 000, Table 1: trial -> (m_r epochs, m_o epochs, convergence-time ratio, m_r acc, m_o acc)
P000_TABLE1 = {
    1: (488, 748, 0.6224, 0.9, 1.0),
    2: (466, 1999, 0.2331, 1.0, 1.0),
    3: (575, 1906, 0.3017, 1.0, 1.0),
    4: (791, 790, 1.001, 0.9, 1.0),
}
P000_TABLE1_AVG = (580, 1360.8, 0.5396, 0.95, 1.0)
P000_TABLE1_COLUMNS = ("mr_epochs", "mo_epochs", "epoch_ratio", "mr_acc", "mo_acc")

# Paper 000, California housing (threshold 0.015): epochs to convergence; m_c only through
# "m_o converged in about the same number of epochs as m_c (the ratio is equal to 0.95)".
P000_CALIFORNIA = {"m_o": 463, "m_r": 443}
P000_CALIFORNIA_MO_OVER_MC = 0.95
P000_CALIFORNIA_THRESHOLD = 0.015

# Paper 002, Table 1 (%): rows in the paper's order; (method, paper removal size, test, unlearned, total)
P002_TABLE1 = (
    ("original", 0, 99.02, 99.00, 99.02),
    ("naive_retrain", 100, 99.03, 99.00, 99.03),
    ("random_relabel", 100, 99.02, 99.00, 99.02),
    ("naive_retrain", 600, 99.14, 99.00, 99.13),
    ("random_relabel", 600, 96.99, 97.67, 97.03),
)
P002_SIZES = (100, 600)
# Figure 1: sizes 50..400, AdaDelta / Adam / SGD x lr 1e-3, 3e-4, 1e-4; the random-guess line.
P002_RANDOM_GUESS = 10.0
P002_FIGURE1_FINDING = ("AdaDelta is the most robust optimizer (no drop from 50 to 400 removals), SGD holds only "
                        "at small sizes, and Adam falls to the random-guess level for every learning rate")
