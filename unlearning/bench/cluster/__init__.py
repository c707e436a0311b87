"""Beyond one machine: `launch` submits a benchmark session as pytest-split shards through submitit (one Slurm job
array, or submitit's local executor) and waits for them; `slurm` starts a one-node Slurm on localhost for tests and
for trying the launcher. The merge of the shards' runs is `unlearning.bench.shards` (torch-free, read by the report)."""
