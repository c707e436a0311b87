"""Running experiments: one experiment end to end (`experiment`), the CLI (`cli`) and its run files (`runfile`),
the up-front cost estimate (`estimate`), the tuning search (`tuning`) and what a run was made with
(`provenance`). Importing this package imports nothing (the report reads `provenance` without torch)."""
