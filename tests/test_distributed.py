"Training in two CPU processes (gloo), as on several GPUs: each sees its own share of the data, and they end with one model."
import json, os, subprocess, sys, warnings
from pathlib import Path
import pytest

from ich_nb.cache import build_cache
from ich_nb.data import index_rsna, split_patients
from ich_nb.phantom import make_phantom
from conftest import ROOT


def test_two_processes_disjoint_data_one_model(tmp_path):
    make_phantom(tmp_path / 'data', n_studies=6, layout='rsna', site='A', matrix=48, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        slices, studies = index_rsna(tmp_path / 'data', progress=False)
        studies = split_patients(studies, seed=0)
    slices = slices.merge(studies[['study_id', 'split']], on='study_id')
    n_train = int((slices.split == 'train').sum())
    if n_train % 2: slices = slices.drop(slices.index[slices.split == 'train'][-1:])      # an even share each
    build_cache(slices, tmp_path / 'cache', 32, progress=False)
    slices.to_csv(tmp_path / 'slices.csv', index=False)
    torchrun = Path(sys.executable).parent / 'torchrun'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([torchrun, '--standalone', '--nproc_per_node', '2', ROOT / 'tests' / 'helpers' / 'dist_train.py',
                        tmp_path / 'slices.csv', tmp_path / 'cache', tmp_path], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads((tmp_path / f'rank{k}.json').read_text()) for k in (0, 1)]
    assert all(x['world'] == 2 for x in ranks)
    a, b = (set(x['served']) for x in ranks)
    assert a and b and not a & b and len(a | b) == ranks[0]['n_train']      # disjoint shares that cover the epoch
    assert ranks[0]['digest'] == ranks[1]['digest']                           # one model
    assert sorted(p.name for p in (tmp_path / 'models').iterdir()) == ['cnn_epoch0.pth', 'cnn_losses.json']   # one process writes
