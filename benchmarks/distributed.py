"""The CNN step (training, then scoring every slice) of a smoke run in one process and in two
(`gpus: 2`: torchrun, gloo on the CPU), on the same data; the one-process run is the baseline.

    .venv/bin/python benchmarks/distributed.py [--epochs 3]

Prints the seconds of each and the ratio, and how far the two processes' probabilities are from
one process's (mean and largest absolute difference): they differ only through batch norm, which
each process computes over its half of the batch.
"""
import argparse, shutil, tempfile, time, warnings
from pathlib import Path

import numpy as np
import papermill as pm

from ich_nb.launch import fit_cnn, score_slices
from ich_nb.pipeline import series_dir
from ich_nb.run import Run, load_profile, start_run
from ich_nb.train import device_name

ap = argparse.ArgumentParser(); ap.add_argument('--epochs', type=int, default=3); a = ap.parse_args()
warnings.simplefilter('ignore')
tmp = Path(tempfile.mkdtemp())
run = Run(start_run(tmp / 'run', load_profile('smoke', [('cnn.epochs', str(a.epochs))])))
pm.execute_notebook(series_dir() / '01_data.ipynb', tmp / '01_data.ipynb', parameters=dict(run_dir=str(run.path)), cwd=str(run.path),
                    progress_bar=False)
out = {}
for n in (1, 2):
    shutil.rmtree(run.path / 'models', ignore_errors=True)
    run.params['gpus'] = n
    t = time.perf_counter()
    learn = fit_cnn(run, 'wdw')
    trained = time.perf_counter() - t
    probs, _ = score_slices(run, 'wdw', learn)
    out[n] = dict(train=trained, total=time.perf_counter() - t, probs=probs)
    print(f"{n} process{'es' if n > 1 else ''}: train {trained:.1f} s, train + score {out[n]['total']:.1f} s "
          f"({len(probs)} slices, {a.epochs} epochs, resnet10t at 64 px)", flush=True)
d = np.abs(out[1]['probs'] - out[2]['probs'])
print(f"two processes against one: {out[1]['total'] / out[2]['total']:.2f}x the speed (train {out[1]['train'] / out[2]['train']:.2f}x); "
      f"probabilities differ by {d.mean():.4f} on average, {d.max():.4f} at most; {device_name()}")
shutil.rmtree(tmp)
