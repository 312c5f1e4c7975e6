"""The ``Example:`` sections of the docstrings outside ``layers/`` run as
doctests (the layer files' examples run in tests/test_layers_extra.py)."""

import doctest
import importlib
from pathlib import Path

import pytest

import nnumpy

SOURCE = Path(nnumpy.__file__).parent
FILES = {
    ".".join(["nnumpy", *p.relative_to(SOURCE).with_suffix("").parts]).removesuffix(".__init__"): p
    for p in sorted(SOURCE.rglob("*.py"))
    if p.relative_to(SOURCE).parts[0] not in ("layers", "__main__.py")
}
WITH_EXAMPLES = [name for name, path in FILES.items() if ">>>" in path.read_text()]


def test_the_modules_with_examples_are_found():
    assert {"nnumpy.module", "nnumpy.summary", "nnumpy.io", "nnumpy.distributed.trainer"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
