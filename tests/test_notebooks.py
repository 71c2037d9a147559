"Run every notebook under nbs/ as nbdev_test does, one pytest test each, so CI gets a summary."
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook
from conftest import ROOT

NBS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb')
             if not any(part.startswith(('.', '_')) for part in p.relative_to(ROOT / 'nbs').parts))


@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(ROOT / 'nbs')) for p in NBS])
def test_notebook(nb):
    ok, _ = run_notebook(nb, skip_flags=get_config().tst_flags.split())
    assert ok, f"{nb.name} failed; its traceback is printed above"
