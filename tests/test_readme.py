"""The README's Python examples run as written."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    if not README.exists():
        pytest.skip("README.md is not beside the tests (installed without the repository)")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README should show Python usage"
    monkeypatch.chdir(tmp_path)   # train() writes its checkpoint under runs/
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["returns"].shape == (100,)
