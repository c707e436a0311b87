"""The machine's GEMM peak and the models' counted training FLOPs (`unlearning.training.throughput`)."""

import math

import pytest

from unlearning.training import throughput


def test_mnist_training_flops_are_forward_times_three_less_the_input_gradient():
    """FlopCounterMode counts forward, weight-gradient and input-gradient passes of every conv
    and matmul; the first conv needs no input gradient (the images require none)."""
    macs = {"conv1": 26 * 26 * 32 * 9, "conv2": 24 * 24 * 64 * 32 * 9, "fc1": 9216 * 128, "fc2": 128 * 10}
    forward = 2 * sum(macs.values())
    assert throughput.train_flops_per_sample("mnist") == 3 * forward - 2 * macs["conv1"]


def test_matmul_peak_is_measured_once_and_positive():
    first = throughput.matmul_gflops("cpu")
    assert math.isfinite(first) and first > 0
    assert throughput.matmul_gflops("cpu") == first             # cached: one measurement per run


def test_achieved_throughput_and_its_fraction_of_the_peak():
    got = throughput.achieved(1e6, samples=2000, seconds=2.0, peak_gflops=4.0)
    assert got == {"train_gflops": pytest.approx(1.0), "peak_fraction": pytest.approx(0.25)}
    assert throughput.achieved(1e6, samples=0, seconds=2.0, peak_gflops=4.0) == {"train_gflops": None,
                                                                                 "peak_fraction": None}
    assert throughput.achieved(1e6, samples=10, seconds=0.0, peak_gflops=4.0)["train_gflops"] is None
