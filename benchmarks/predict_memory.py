"""Peak memory of `predict_slices` against that of commit c3d6483, which gathered the batches in a
list and joined them at the end, each in a fresh process.

    .venv/bin/python benchmarks/predict_memory.py [--repeat 200] [--arch resnet50]   # about 4 min

A 10-study phantom at 64 px, cached at 32 px; an untrained resnet50 (2,048 features, as many as
ResNeXt-101 32x8d); the phantom's slice table repeated `--repeat` times. Prints the size of the
embeddings and the process's peak during the call above its size before it (the peak reset
through /proc/self/clear_refs, so an earlier peak cannot hide this one), after a warm-up call.
"""
import argparse, os, platform, tempfile, time, warnings
from pathlib import Path

from ich_nb.data import build_cache, index_rsna, split_patients
from ich_nb.phantom import make_phantom
from slice_table import package_at, run_fresh

BASELINE = 'c3d6483'

PREDICT = '''
import sys, time, warnings
warnings.simplefilter('ignore')
import pandas as pd, torch
import ich_nb
from ich_nb.cnn import cnn_learner, predict_slices, slice_dls
mb = lambda key: next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key)) / 1024

slices, cache = pd.read_pickle(sys.argv[1]), sys.argv[2]
torch.set_num_threads(2)
learn = cnn_learner(slice_dls(slices, cache, 'wdw', bs=64, augment=False), sys.argv[3])
predict_slices(learn, slices.head(64), cache, 'wdw')                        # warm-up
big = pd.concat([slices] * int(sys.argv[4]), ignore_index=True)
open('/proc/self/clear_refs', 'w').write('5')                              # the peak so far forgotten: VmHWM = VmRSS
base, t = mb('VmRSS:'), time.perf_counter()
probs, emb = predict_slices(learn, big, cache, 'wdw')
print(time.perf_counter() - t, mb('VmHWM:') - base, emb.nbytes / 2**20, len(big), ich_nb.__file__)
'''


def main(repeat, arch):
    warnings.simplefilter('ignore')
    print(f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores, Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_phantom(tmp / 'rsna', n_studies=10, layout='rsna', site='A', matrix=64, workers=1, progress=False)
        slices, studies = index_rsna(tmp / 'rsna', workers=1, progress=False)
        build_cache(slices, tmp / 'cache', 32, workers=1, progress=False)
        slices.merge(split_patients(studies)[['study_id', 'split']], on='study_id').to_pickle(tmp / 'slices.pkl')
        args = (tmp / 'slices.pkl', tmp / 'cache', arch, repeat)
        for name, pythonpath in (('predict_slices now', None), (f'predict_slices of {BASELINE}', package_at(BASELINE, tmp / 'old'))):
            t, peak, mb, n = map(float, run_fresh(PREDICT, *args, pythonpath=pythonpath, cwd=tmp))
            print(f"{name:28s} {n:,.0f} slices in {t:5.1f} s; embeddings {mb:4.0f} MB; the peak rose {peak:4.0f} MB")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeat', type=int, default=200, help='at 40 the allocator\'s reuse of freed memory hides the difference')
    p.add_argument('--arch', default='resnet50')
    a = p.parse_args()
    main(a.repeat, a.arch)
