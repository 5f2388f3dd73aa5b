"""@cached keeps signatures for type checkers: one file must pass mypy, one must fail.

mypy runs once, on both files, with the project's configuration (strict).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")
EXPECTED = re.compile(r"# E: (?P<message>.*)$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, str]]:
    """``{file name: {line: error messages}}`` for both typing files."""
    work = tmp_path_factory.mktemp("typing")
    shutil.copy(HERE / "cached_errors.snippet", work / "cached_errors.py")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # mypy_path in pyproject.toml is relative to the project
        stdout, stderr, _ = mypy_api.run(
            [
                str(HERE / "cached_ok.py"),
                str(work / "cached_errors.py"),
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--cache-dir",
                str(work / "mypy-cache"),
                "--no-error-summary",
                "--no-pretty",
            ]
        )
    assert not stderr, stderr
    errors: dict[str, dict[int, str]] = {"cached_ok.py": {}, "cached_errors.py": {}}
    for line in stdout.splitlines():
        found = ERROR.match(line)
        if found:
            by_line = errors.setdefault(Path(found["file"]).name, {})
            number = int(found["line"])
            by_line[number] = (by_line.get(number, "") + " | " + found["message"]).strip(" |")
    return errors


def test_correct_use_type_checks(mypy_errors: dict[str, dict[int, str]]) -> None:
    assert mypy_errors["cached_ok.py"] == {}


def test_misuse_fails_exactly_where_marked(mypy_errors: dict[str, dict[int, str]]) -> None:
    expected = {
        number: found["message"]
        for number, line in enumerate((HERE / "cached_errors.snippet").read_text().splitlines(), 1)
        if (found := EXPECTED.search(line))
    }
    assert len(expected) == 12
    got = mypy_errors["cached_errors.py"]
    assert sorted(got) == sorted(expected), got
    for number, message in expected.items():
        assert message in got[number], f"line {number}: {got[number]}"
