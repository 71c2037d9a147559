"The explorers driven without a browser: sliders and menus change what is drawn, at the size it is drawn; bad inputs give a message."
import io, os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from ich_nb.labels import CLASSES
from ich_nb.phantom import make_phantom
from ich_nb.widgets import NO_THRESHOLD, SIDE, HeatmapExplorer, WindowExplorer, called, threshold_set


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp('explore')
    made = make_phantom(root, n_studies=3, layout='cq500', site='B', matrix=128, prevalence=1., progress=False)
    n = made.index[made['any'] == 1][0]
    return root / f'CQ500CT{n} CQ500CT{n}'


def finished_runs() -> list[Path]:
    "Finished run folders to test the heatmap explorer on: $ICH_NB_TEST_RUNS (separated by ':'), else runs/smoke if it has finished."
    given = [Path(p) for p in os.environ.get('ICH_NB_TEST_RUNS', '').split(':') if p]
    runs = given or [ROOT / 'runs' / 'smoke']
    return [r for r in runs if (r / 'preds' / 'studies.csv').exists() and (r / 'thresholds.json').exists()]


def contrast(a): return float(a.astype(float).std())
def size(png_bytes): return Image.open(io.BytesIO(png_bytes)).size


def test_window_explorer_responds(study):
    ex = WindowExplorer(study)
    assert ex.message.value == '' and ex.slice.max > 10
    centre = lambda: ex.shown['window'][32:96, 32:96]
    ex.level.value, ex.width.value = 40, 80
    narrow = contrast(centre())
    ex.width.value = 500
    assert contrast(centre()) < narrow                     # a wider window: less contrast in the brain
    ex.width.value = 20
    assert contrast(centre()) > narrow                     # a narrower one: more
    before = ex.shown['window'].copy()
    ex.level.value = 200                                   # a level above brain: the brain goes black
    assert ex.shown['window'][32:96, 32:96].mean() < before[32:96, 32:96].mean()
    k = ex.slice.value
    wdw, slc = ex.shown['wdw'].copy(), ex.shown['slc'].copy()
    ex.slice.value = k + 1
    assert not np.array_equal(wdw, ex.shown['wdw']) and np.array_equal(slc[..., 2], ex.shown['slc'][..., 1])   # above becomes this
    ex.preset.value = 'bone'
    assert (ex.level.value, ex.width.value, ex.wide.value) == (600, 2800, True)
    ex.preset.value = 'full range'
    assert ex.width.value > 2000
    assert ex.images['histogram'].value[:4] == b'\x89PNG'


def test_presets_apply_on_every_click_and_let_go_when_a_slider_moves(study):
    ex = WindowExplorer(study)
    ex.preset.value = 'subdural'
    assert (ex.level.value, ex.width.value) == (80, 200)
    ex.level.value = 81                                    # a drag: the preset lets go
    assert ex.preset.value is None and ex.level.value == 81
    ex.preset.value = 'subdural'                           # the same button again: applied again
    assert (ex.level.value, ex.width.value, ex.preset.value) == (80, 200, 'subdural')
    ex.slice.value = ex.slice.value - 1                    # moving through the study keeps the preset
    assert ex.preset.value == 'subdural'


def test_sliders_are_fine_enough_for_the_exercise(study):
    "The workshop's exercise takes the width from 80 to 200 HU: the slider must span it in 1 HU steps without the wide ranges."
    ex = WindowExplorer(study)
    assert (ex.level.min, ex.level.max, ex.level.step) == (-100, 200, 1) and (ex.width.min, ex.width.max, ex.width.step) == (1, 500, 1)
    assert not ex.wide.value
    ex.width.value = 200
    assert ex.width.value == 200 and not ex.wide.value


def test_every_picture_is_square_at_one_size_whatever_the_input(study):
    for source in (study, np.random.default_rng(0).normal(30, 300, (5, 64, 64)).astype(np.float32),
                   np.random.default_rng(0).normal(30, 300, (5, 512, 512)).astype(np.float32)):
        ex = WindowExplorer(source)
        assert [size(ex.images[k].value) for k in ('window', 'wdw', 'slc')] == [(SIDE, SIDE)] * 3
        assert size(ex.images['histogram'].value) == (3 * SIDE + 24, 130)     # as wide as the three pictures and their gaps
        assert {ex.images[k].layout.width for k in ('window', 'wdw', 'slc')} == {f'{SIDE}px'}


def test_window_explorer_is_fast_on_512(tmp_path):
    vol = np.random.default_rng(0).normal(30, 300, (20, 512, 512)).astype(np.float32)
    ex = WindowExplorer(vol)
    times = []
    for w in (100, 200, 300, 400, 500):
        ex.width.value = w; times.append(ex.seconds)
    assert np.median(times) < 0.2


def test_a_class_without_threshold_is_not_called():
    assert called(0.98, float('nan')) == called(0.98, None) == NO_THRESHOLD
    assert called(0.02, 0.01) == 'yes' and called(0.5, 0.5) == 'yes' and called(0.49, 0.5) == 'no'
    assert not threshold_set(float('nan')) and threshold_set(0.0)


def test_bad_inputs_give_messages(tmp_path):
    (tmp_path / 'empty').mkdir()
    assert 'Cannot show this study' in WindowExplorer(tmp_path / 'empty').message.value
    assert 'Cannot show this study' in WindowExplorer(tmp_path / 'missing').message.value
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'params.yaml').write_text('seed: 0\n')
    h = HeatmapExplorer(tmp_path / 'run')
    assert 'Nothing to explore yet' in h.message.value and 'finish the run' in h.message.value


@pytest.mark.parametrize('run', finished_runs() or [None], ids=lambda r: r.name if r else 'no-run')
def test_heatmap_explorer_on_a_finished_run(run):
    if run is None: pytest.skip('no finished run: make reproduce (runs/smoke) or set ICH_NB_TEST_RUNS')
    h = HeatmapExplorer(run)
    assert h.message.value == ''
    assert [size(h.images[k].value) for k in ('slice', 'heatmap')] == [(320, 320)] * 2
    assert [o[0] for o in h.cls.options] == list(CLASSES.values())          # the registry's display names
    for c in CLASSES:                                                       # every call agrees with its p and threshold
        r, t = h.preds.set_index('study_id').loc[h.study.value], h.thr[c]['balanced']
        assert called(r[f'p_{c}'], t) in h.calls.value
    with torch.no_grad(): p = torch.sigmoid(h.net.eval()(h._x)).numpy()
    assert np.abs(p - h._probs).max() < 1e-4                               # the run's stored slice probabilities are the network's
    heat, mask = h.shown['heatmap'], h._masks[h.slice.value]
    grey = np.repeat(h.shown['slice'][..., None], 3, -1)
    assert np.array_equal(heat[~mask], grey[~mask])                         # no heat outside the head
    kinds = set(zip(h.mistakes.cls, h.mistakes.kind))
    listed = {v[1:] for _, v in h.wrong.options[1:]}
    assert kinds == listed                                                  # every kind of wrong call the run has is in the menu
    if len(h.wrong.options) > 1:
        h.wrong.value = h.wrong.options[1][1]
        assert (h.study.value, h.cls.value) == h.wrong.options[1][1][:2]
