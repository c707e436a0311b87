"""Shape rules ruff does not check: no function in the project longer than MAX_LINES lines.

(Complexity — ruff's C901, max-complexity 10 — and the other rules run in CI as `ruff check`.)
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 50
FOLDERS = ("unlearning", "benchmarks", "reports", "tests")


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_no_function_is_longer_than_the_limit():
    too_long = [f"{path.relative_to(ROOT)}:{line} {name} ({n} lines)"
                for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))
                for name, line, n in functions(path) if n > MAX_LINES]
    assert not too_long, f"functions over {MAX_LINES} lines: " + "; ".join(too_long)


def test_tox_envs_run_the_report_tests_too():
    """Without the `report` extra the report generator's tests skip: every tox env must install it."""
    import configparser

    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    assert {"test", "report"} <= set(tox["testenv"]["extras"].split())
