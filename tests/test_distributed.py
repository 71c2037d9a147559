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
    build_cache(slices, tmp_path / 'cache', 32, progress=False)                             # every slice of each series cached
    n_train = int((slices.split == 'train').sum())
    if n_train % 2: slices = slices.drop(slices.index[slices.split == 'train'][-1:])      # an even share each
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


SMALL = ['-p', 'data.train_studies', '12', '-p', 'data.test_studies', '4', '-p', 'data.matrix', '48', '-p', 'image.size', '32',
         '-p', 'cnn.epochs', '2', '-p', 'rnn.epochs', '1', '-p', 'eval.n_boot', '20']


def reproduce(run_dir, gpus, *more, **kw):
    ich_nb = Path(sys.executable).parent / 'ich-nb'
    return subprocess.Popen([ich_nb, 'reproduce', '--profile', 'smoke', '--run-dir', run_dir, '--gpus', str(gpus), *SMALL, *more],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def test_reproduce_in_two_processes_resumes_after_a_kill_and_matches_one(tmp_path):
    "`ich-nb reproduce --gpus 2` on the CPU (gloo): killed after the first CNN epoch, run again, it resumes; its CNNs match one process's."
    import shutil, signal, time
    import numpy as np
    from ich_nb.launch import fit_cnn, score_slices
    from ich_nb.run import CNN_MODEL, Run
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    two = reproduce(tmp_path / 'two', 2, '--until', '02_cnns', env=env)
    first = tmp_path / 'two' / 'models' / 'cnn_raw_epoch0.pth'
    t = time.time()
    while not first.exists() and two.poll() is None and time.time() - t < 600: time.sleep(0.5)
    assert first.exists(), two.communicate()[0][-3000:]
    os.killpg(two.pid, signal.SIGKILL); two.wait()
    stamp = first.stat().st_mtime_ns
    again = reproduce(tmp_path / 'two', 2, '--until', '02_cnns', env=env)  # the steps after the CNNs are one process's
    out = again.communicate(timeout=900)[0]
    assert again.returncode == 0, out[-3000:]
    assert 'Stopped after 02_cnns' in out and not (tmp_path / 'two' / 'metrics.json').exists()    # --until: nothing after it ran
    assert first.stat().st_mtime_ns == stamp                                   # resumed: the first epoch was not trained again
    assert {p.parent.name for p in (tmp_path / 'two' / 'logs' / 'train_raw').rglob('stderr.log')} == {'0', '1'}   # every rank's log kept
    shutil.copytree(tmp_path / 'two', tmp_path / 'one', ignore=shutil.ignore_patterns('models', 'preds', 'logs'))
    one = Run(tmp_path / 'one'); one.params['gpus'] = 1                        # the same data and cache, the CNNs trained in one process
    for pipeline, model in CNN_MODEL.items():
        p1 = score_slices(one, pipeline, fit_cnn(one, pipeline))[0]
        p2 = np.load(tmp_path / 'two' / 'preds' / model / 'probs.npy')
        assert np.abs(p1 - p2).mean() < 0.1, (model, np.abs(p1 - p2).mean())   # batch norm over half the batch: close, not equal


def test_scoring_across_two_nodes_on_one_machine(tmp_path):
    "Two 'nodes' (two torchruns of two processes, a c10d rendezvous as on a cluster) score a run's slices as one process does."
    import socket
    import numpy as np
    import papermill as pm
    from ich_nb.launch import fit_cnn, score_slices
    from ich_nb.pipeline import series_dir
    from ich_nb.run import Run, load_profile, start_run
    small = [('data.train_studies', '10'), ('data.test_studies', '4'), ('data.matrix', '48'), ('image.size', '32'), ('cnn.epochs', '1')]
    run = Run(start_run(tmp_path / 'run', load_profile('smoke', small)))
    pm.execute_notebook(ROOT / 'nbs' / 'paper' / '01_data.ipynb', tmp_path / 'data.ipynb', parameters=dict(run_dir=str(run.path)),
                        cwd=str(run.path), progress_bar=False)
    one = score_slices(run, 'wdw', fit_cnn(run, 'wdw'))
    with socket.socket() as s: s.bind(('localhost', 0)); port = s.getsockname()[1]
    rdzv = ['--nnodes', '2', '--rdzv-backend', 'c10d', '--rdzv-endpoint', f'localhost:{port}', '--rdzv-id', 'ich']
    parts = run.path / 'logs' / 'score_wdw' / 'parts'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'ICH_NB_TORCHRUN': ' '.join([*rdzv, '--node-rank', '0'])}
    other = subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', *rdzv, '--node-rank', '1', '--nproc_per_node', '2',
                              '--no-python', sys.executable, '-c', 'from ich_nb.launch import rank_main; rank_main()',
                              'score', run.path, 'wdw', parts], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run.params['gpus'] = 2                                                  # two processes on this node, two on the other
    os.environ['ICH_NB_TORCHRUN'] = env['ICH_NB_TORCHRUN']
    try: two = score_slices(run, 'wdw')
    finally: del os.environ['ICH_NB_TORCHRUN']
    assert other.wait(timeout=300) == 0, other.stdout.read()[-3000:]
    assert np.allclose(two[0], one[0], atol=1e-5) and np.allclose(two[1], one[1], atol=1e-4)
