"""What every room stands on, standard library only: atomic files (`files`), the record schema (`schema`) and
the plug-in loader the two registries use (`plugins`). Importing this package imports nothing else."""
