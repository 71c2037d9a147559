"""What a short epoch costs the loader: fastai starts its worker processes again at every epoch, so
timing batches across many short epochs times the start-ups too. On the CPU, without augmentation
(the loader alone): seconds from a new epoch to its first batch by workers, and images/s over the
same number of batches from a table of a few batches an epoch (timed from its first batch, as
gpu.py timed the loader until 2026-11-27) against one long epoch (timed once the batches the
workers made ahead are taken).

    .venv/bin/python benchmarks/loader_epochs.py [--studies 8] [--matrix 256] [--batches 64] [--workers 0 2 8]
"""
import argparse, os, platform, tempfile, time, warnings
from pathlib import Path

import torch

from gpu import epoch_start, one_epoch, phantom_cache
from ich_nb.cnn import slice_dls


def rate(table, cache, workers, batches, skip, bs=32):
    "Images/s over `batches` training batches after `skip`, starting a new epoch (and its workers) whenever one ends; and how many were started."
    dls = slice_dls(table, cache, 'slc', bs=bs, num_workers=workers, device='cpu', augment=None)
    it = iter(dls.train)
    for _ in range(skip): next(it)
    n, restarts, t = 0, 0, time.perf_counter()
    while n < batches * bs:
        try: n += len(next(it)[0])
        except StopIteration: it, restarts = iter(dls.train), restarts + 1
    return n / (time.perf_counter() - t), restarts


def main(a):
    warnings.simplefilter('ignore')
    print(f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores, torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    tmp = Path(tempfile.mkdtemp())
    slices, info = phantom_cache(tmp, a.studies, a.matrix, 2)
    n_train = (slices.split == 'train').sum()
    print(f"phantom: {info['slices']} slices at {a.matrix} px, {n_train} for training ({n_train // 32} batches of 32 an epoch)")
    cpu = torch.device('cpu')
    for w in a.workers:
        print(f"a new epoch's first batch, {w:2d} workers: after {epoch_start(slices, tmp / 'cache', None, 32, w, cpu, augment=None) * 1e3:4.0f} ms")
    for w in a.workers:
        short, k = rate(slices, tmp / 'cache', w, a.batches, skip=1)            # as gpu.py timed the loader before
        skip = 2 * w + 1                                                          # the start-up and the batches made ahead (two a worker)
        long, _ = rate(one_epoch(slices, skip + a.batches, 32), tmp / 'cache', w, a.batches, skip)
        print(f"{w:2d} workers, {a.batches} batches: {short:4.0f} images/s across {k + 1} epochs, {long:4.0f} within one ({long / short:.2f}x)")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--studies', type=int, default=8); p.add_argument('--matrix', type=int, default=256)
    p.add_argument('--batches', type=int, default=64); p.add_argument('--workers', type=int, nargs='+', default=[0, 2, 8])
    main(p.parse_args())
