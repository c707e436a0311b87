"""`python -m unlearning.methods`: print the README's method table, generated from the registry (`markdown_table`)."""

from .base import markdown_table

print(markdown_table(), end="")
