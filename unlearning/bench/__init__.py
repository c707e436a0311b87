"""The benchmark machinery a library user does not need: the report generator (`report`), sharded runs and
their merge (`shards`) and the launcher for Slurm or submitit's local executor (`cluster`). Importing this
package imports nothing; `report` and `shards` import without torch."""
