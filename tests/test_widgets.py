"The explorers driven without a browser: sliders and menus change what is drawn; bad inputs give a message."
import numpy as np
import pytest

from ich_nb.phantom import make_phantom
from ich_nb.widgets import HeatmapExplorer, WindowExplorer


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp('explore')
    made = make_phantom(root, n_studies=3, layout='cq500', site='B', matrix=128, prevalence=1., progress=False)
    n = made.index[made['any'] == 1][0]
    return root / f'CQ500CT{n} CQ500CT{n}'


def contrast(a): return float(a.astype(float).std())


def test_window_explorer_responds(study):
    ex = WindowExplorer(study)
    assert ex.message.value == '' and ex.slice.max > 10
    centre = lambda: ex.shown['window'][32:96, 32:96]
    ex.level.value, ex.width.value = 40, 80
    narrow = contrast(centre())
    ex.width.value = 1000
    assert contrast(centre()) < narrow                     # a wider window: less contrast in the brain
    ex.width.value = 20
    assert contrast(centre()) > narrow                     # a narrower one: more
    before = ex.shown['window'].copy()
    ex.level.value = 300                                   # a level above brain: the brain goes black
    assert ex.shown['window'][32:96, 32:96].mean() < before[32:96, 32:96].mean()
    k = ex.slice.value
    wdw, slc = ex.shown['wdw'].copy(), ex.shown['slc'].copy()
    ex.slice.value = k + 1
    assert not np.array_equal(wdw, ex.shown['wdw']) and np.array_equal(slc[..., 2], ex.shown['slc'][..., 1])   # above becomes this
    ex.preset.value = 'bone'
    assert (ex.level.value, ex.width.value) == (600, 2800)
    ex.preset.value = 'full range'
    assert ex.width.value > 2000
    assert ex.images['histogram'].value[:4] == b'\x89PNG'


def test_window_explorer_is_fast_on_512(tmp_path):
    vol = np.random.default_rng(0).normal(30, 300, (20, 512, 512)).astype(np.float32)
    ex = WindowExplorer(vol)
    times = []
    for w in (100, 200, 300, 400, 500):
        ex.width.value = w; times.append(ex.seconds)
    assert np.median(times) < 0.2


def test_bad_inputs_give_messages(tmp_path):
    (tmp_path / 'empty').mkdir()
    assert 'Cannot show this study' in WindowExplorer(tmp_path / 'empty').message.value
    assert 'Cannot show this study' in WindowExplorer(tmp_path / 'missing').message.value
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'params.yaml').write_text('seed: 0\n')
    h = HeatmapExplorer(tmp_path / 'run')
    assert 'Nothing to explore yet' in h.message.value and 'finish the run' in h.message.value
