"""Phantom generation (studies/s) and image-cache building (slices/s, bytes/slice) on this machine.

    .venv/bin/python benchmarks/data.py [--workers 2]

Prints one line per measurement. Baselines for comparison: one worker against two, and both
cache formats.
"""
import argparse, os, platform, shutil, tempfile, time, warnings
from pathlib import Path

from ich_nb.cache import build_cache
from ich_nb.data import index_cq500, index_rsna
from ich_nb.phantom import make_phantom


def timed(f):
    t = time.perf_counter(); out = f(); return out, time.perf_counter() - t


def main(workers):
    warnings.simplefilter('ignore')
    print(f"machine: {os.cpu_count()} cores, {platform.python_version()}, {platform.machine()}; workers={workers}")
    tmp = Path(tempfile.mkdtemp())
    try:
        for layout, site, n, matrix in [('rsna', 'A', 30, 128), ('cq500', 'B', 12, 128), ('rsna', 'A', 10, 256)]:
            for w in sorted({1, workers}):
                out = tmp / f'{layout}{matrix}w{w}'
                _, dt = timed(lambda: make_phantom(out, n_studies=n, layout=layout, site=site, matrix=matrix, workers=w, progress=False))
                size = sum(f.stat().st_size for f in out.rglob('*') if f.is_file())
                print(f"phantom  {layout:5s} site {site} {matrix:3d} px  {n:2d} studies  workers={w}: {dt:6.1f} s  "
                      f"{n / dt:5.2f} studies/s  {size / n / 1e6:5.2f} MB/study")
        slices, _ = index_rsna(tmp / f'rsna128w{workers}', progress=False)
        big, _ = index_rsna(tmp / f'rsna256w{workers}', progress=False)
        for name, sl, size in [('128 px series -> 96', slices, 96), ('256 px series -> 256', big, 256)]:
            for fmt in ('npy', 'png'):
                for w in sorted({1, workers}):
                    cache = tmp / f'cache_{fmt}_{size}_{w}'
                    _, dt = timed(lambda: build_cache(sl, cache, size, fmt=fmt, workers=w, progress=False))
                    nbytes = sum(f.stat().st_size for f in cache.rglob('*') if f.is_file())
                    print(f"cache    {name:22s} {fmt}  workers={w}: {len(sl) / dt:7.1f} slices/s  {nbytes / len(sl):9.0f} bytes/slice")
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--workers', type=int, default=2)
    main(p.parse_args().workers)
