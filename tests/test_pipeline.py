"The paper's series end to end on the smoke profile, killed in the middle of training and resumed; and bad parameters."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

from ich_nb.labels import CLASSES
from ich_nb.report import MODELS

ICH_NB = Path(sys.executable).parent / 'ich-nb'


def test_a_bad_parameter_stops_before_any_work(tmp_path):
    r = subprocess.run([ICH_NB, 'reproduce', '--run-dir', tmp_path / 'run', '-p', 'cnn.epochs', 'three'], capture_output=True, text=True)
    assert r.returncode == 2 and "cnn.epochs is 'three' (str); it must be int" in r.stderr
    assert not (tmp_path / 'run').exists()
    r = subprocess.run([ICH_NB, 'reproduce', '--run-dir', tmp_path / 'run', '-p', 'cnn.epoch', '3'], capture_output=True, text=True)
    assert r.returncode == 2 and 'unknown parameter cnn.epoch' in r.stderr
    r = subprocess.run([ICH_NB, 'reproduce', '--profile', 'paper', '--run-dir', tmp_path / 'run'], capture_output=True, text=True)
    assert r.returncode == 2 and 'data.data_dir is needed' in r.stderr


def test_smoke_series_killed_in_training_resumes_and_finishes(tmp_path):
    run = tmp_path / 'smoke'
    env = {**os.environ, 'OMP_NUM_THREADS': '2'}
    proc = subprocess.Popen([ICH_NB, 'reproduce', '--run-dir', run], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not (run / 'models' / 'cnn_wdw_epoch0.pth').exists():
        time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read()
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()                    # killed while training CNNwdw
    manifest = json.loads((run / 'manifest.json').read_text())
    assert manifest['01_data']['status'] == 'done' and '02_cnns' not in manifest
    data_done = manifest['01_data']['finished']
    kept = {p.name: p.stat().st_mtime_ns for p in (run / 'models').glob('*.pth')}

    r = subprocess.run([ICH_NB, 'reproduce', '--run-dir', run], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert '[1/5] 01_data: done before, skipped' in r.stdout
    manifest = json.loads((run / 'manifest.json').read_text())
    assert manifest['01_data']['finished'] == data_done                  # no step done twice
    assert all(manifest[s]['status'] == 'done' for s in ['01_data', '02_cnns', '03_rnns', '04_evaluate', '05_explain'])
    changed = [n for n, t in kept.items() if (run / 'models' / n).stat().st_mtime_ns != t]
    assert not changed, f"checkpoints of finished epochs were written again: {changed}; kept {sorted(kept)}"

    # the run folder holds what the paper reports
    preds = pd.read_csv(run / 'preds' / 'studies.csv')
    assert sorted(preds.model.unique()) == sorted(MODELS)
    assert set(preds.split) == {'train', 'valid', 'test'} and preds.groupby('model').size().nunique() == 1
    metrics = json.loads((run / 'metrics.json').read_text())
    assert set(metrics['models']) == set(MODELS) and all(0 <= m['auc_any'] <= 1 for m in metrics['models'].values())
    for f in ['report.html', 'figures/fig1.html', 'figures/fig1.png', 'figures/fig2.html', 'figures/fig2.svg',
              'tables/table2.csv', 'tables/table_s3.csv', 'tables/table_s4.csv']:
        assert (run / f).stat().st_size > 500, f
    assert sorted(p.name for p in (run / 'executed').iterdir()) == [f'{s}.ipynb' for s in ['01_data', '02_cnns', '03_rnns', '04_evaluate', '05_explain']]
    for line in ['CNNens-RNN', 'Report:']: assert line in r.stdout
    assert all(len(v) == 64 for s in manifest.values() for k, v in s['produced'].items() if not k.startswith('models/'))

    # triage with the trained run: a phantom test study gives what the run itself computed for it
    study = next((run / 'data' / 'test').glob('CQ500CT*'))
    dirs = [study, tmp_path / 'missing']
    samples = Path(__file__).resolve().parents[2] / 'shared' / 'real_samples' / 'rsna_series_ID_fff502d5'
    if samples.is_dir(): dirs.append(samples)                              # a real RSNA series (the model knows only phantoms)
    r = subprocess.run([ICH_NB, 'predict', *dirs, '--run-dir', run, '--out', tmp_path / 'pred.csv'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = pd.read_csv(tmp_path / 'pred.csv')
    assert len(out) == len(dirs) and out.error.fillna('').tolist()[1] == 'not a folder'
    ours = out.iloc[0]
    theirs = preds[(preds.model == 'CNNens-RNN') & (preds.study_id == ours.study_id)].iloc[0]
    for c in CLASSES:
        assert abs(ours[f'p_{c}'] - theirs[f'p_{c}']) < 1e-4
        assert {ours[f'balanced_{c}'], ours[f'high_sensitivity_{c}']} <= {0, 1} or pd.isna(ours[f'balanced_{c}'])
    if samples.is_dir(): assert out.n_slices.iloc[2] == 36 and 0 <= out.p_any.iloc[2] <= 1

    # the heatmap explorer on the finished run
    from ich_nb.widgets import HeatmapExplorer
    h = HeatmapExplorer(run)
    assert h.message.value == '' and len(h.study.options) == metrics['test_studies'] and 'R1 R2 R3' in h.calls.value
    first = h.shown['overlay'].copy()
    h.alpha.value = 0.9
    assert not np.array_equal(first, h.shown['overlay'])
    h.cls.value = 'subdural'
    assert h.shown['overlay'].shape == first.shape
