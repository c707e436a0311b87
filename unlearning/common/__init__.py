"""What every room stands on: atomic files (`files`), the record schema (`schema`) and the plug-in loader the two
registries use (`plugins`), standard library only; the one summary of repeated values, mean and interval, that the
CLI and the report share (`summary`, numpy and scipy). Importing this package imports nothing else."""
