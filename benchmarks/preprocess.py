"""Header indexing, preprocessing into the cache, and loading training batches, each against its baseline.

    .venv/bin/python benchmarks/preprocess.py [--studies 8] [--size 480] [--cache-size 512] [--peak 4 8] [--peak-only [--peak-matrix 512]]

On a 512 px phantom in RSNA's layout (real DICOM, as RSNA's files: 512 x 512, 16-bit):
- indexing: `scan_headers` (1 and 2 workers) against a plain loop of `pydicom.dcmread(stop_before_pixels=True)`,
  and against that loop reading the same tags (`header_row`);
- the cache: `build_cache` (one read per slice, the images of all three pipelines, 1 and 2 workers)
  at the scans' 512 px (the paper profile: HU kept, the GPU resizes to 480) and at 480 px (the
  four 8-bit images, resized here), npy and png, against the authors' method (per pipeline and slice: read the DICOM - three files
  for slice concatenation - window, resize to 480 px, write a JPEG) and against the bare pixel read
  (the limit);
- compressed npz (zlib) of the same HU, written and read back;
- reading one slc input back from each format (npy, png, npz, the authors' JPEG);
- peak memory of indexing and caching at two dataset sizes (it should not grow with the data);
- training batches at 480 px from the 512 px cache (fastai DataLoaders; augmentation and resize on
  the CPU here, on the GPU where there is one).
Prints one line per figure.
"""
import argparse, os, platform, shutil, subprocess, sys, tempfile, textwrap, time, warnings
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from ich_nb.cache import build_cache
from ich_nb.data import index_rsna, scan_headers, split_patients
from ich_nb.dicom import header_row, hounsfield, read_dicom
from ich_nb.phantom import make_phantom
from ich_nb.windowing import WINDOWS, window


def rate(n, f):
    t = time.perf_counter(); f(); return n / (time.perf_counter() - t)


def authors_method(slices, out: Path, size: int):
    "The authors' preprocessing, faithfully: each pipeline on its own, a JPEG per slice and pipeline."
    out.mkdir()
    for sid, g in slices.groupby('series_id'):
        paths = g.sort_values('slice_idx').path.tolist()
        for k, p in enumerate(paths):
            ds = pydicom.dcmread(p)
            raw = np.maximum(ds.pixel_array.astype(np.float32), 0)
            img = (raw / max(raw.max(), 1) * 255).astype(np.uint8)
            Image.fromarray(img).resize((size, size), Image.BILINEAR).save(out / f'{sid}_{k}_raw.jpg', quality=95)
            hu = hounsfield(ds)
            wdw = np.stack([window(hu, *WINDOWS[w]) for w in WINDOWS], -1)
            Image.fromarray(wdw).resize((size, size), Image.BILINEAR).save(out / f'{sid}_{k}_wdw.jpg', quality=95)
            nb = [hounsfield(read_dicom(paths[j])) for j in (max(k - 1, 0), min(k + 1, len(paths) - 1))]
            slc = np.stack([window(nb[0], *WINDOWS['brain']), window(hu, *WINDOWS['brain']), window(nb[1], *WINDOWS['brain'])], -1)
            Image.fromarray(slc).resize((size, size), Image.BILINEAR).save(out / f'{sid}_{k}_slc.jpg', quality=95)


# The main process's peak is its VmHWM: its ru_maxrss would start at the RSS of the process that
# started it (Linux carries it across exec), which here is a benchmark holding torch and fastai.
PEAK = textwrap.dedent('''
    import resource, sys, warnings
    warnings.simplefilter('ignore')
    from ich_nb.cache import build_cache
    from ich_nb.data import index_rsna
    slices, _ = index_rsna(sys.argv[1], workers=2, progress=False)
    build_cache(slices, sys.argv[2], int(sys.argv[3]), workers=2, progress=False)
    me = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))
    print(len(slices), me, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
''')


def main(studies, size, cache_size, peak):
    warnings.simplefilter('ignore')
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
          f"{studies} phantom studies at 512 px, images at {size} px")
    tmp = Path(tempfile.mkdtemp())
    try:
        root = tmp / 'rsna'
        make_phantom(root, n_studies=studies, layout='rsna', site='A', matrix=512, workers=2, progress=False)
        files = sorted((root / 'stage_2_train').glob('*.dcm'))
        n = len(files)
        print(f"{n} slices, {sum(f.stat().st_size for f in files) / n / 1e3:.0f} kB per file")

        loop = rate(n, lambda: [pydicom.dcmread(f, stop_before_pixels=True) for f in files])
        print(f"indexing  plain dcmread loop (header only), 1 process: {loop:8.0f} files/s")
        tags = rate(n, lambda: [header_row(f, pydicom.dcmread(f, stop_before_pixels=True)) for f in files])
        print(f"indexing  the loop reading the indexed tags, 1 process: {tags:7.0f} files/s")
        for w in (1, 2):
            r = rate(n, lambda: scan_headers(files, workers=w, progress=False))
            print(f"indexing  scan_headers, {w} worker(s):                {r:8.0f} files/s  ({r / loop:.2f}x the loop, "
                  f"{r / tags:.2f}x the loop reading the tags)")

        slices, st = index_rsna(root, workers=2, progress=False)
        bare = rate(n, lambda: [pydicom.dcmread(f).pixel_array for f in files])
        print(f"cache     bare pixel read (the limit), 1 core:      {bare:8.1f} slices/s")
        base = rate(n, lambda: authors_method(slices, tmp / 'authors', size))
        jpg = sum(f.stat().st_size for f in (tmp / 'authors').iterdir()) / n
        print(f"cache     authors' method (3 pipelines, JPEG), 1 core: {base:6.1f} slices/s  {jpg:9.0f} bytes/slice")
        for px, fmt, w in [(cache_size, 'npy', 1), (cache_size, 'npy', 2), (cache_size, 'png', 1), (size, 'npy', 1), (size, 'npy', 2)]:
            c = tmp / f'cache_{px}_{fmt}_{w}'
            r = rate(n, lambda: build_cache(slices, c, px, fmt, workers=w, progress=False))
            nbytes = sum(f.stat().st_size for f in c.rglob('*') if f.is_file()) / n
            print(f"cache     build_cache {fmt} at {px} px, {w} worker(s): {r:8.1f} slices/s  {nbytes:9.0f} bytes/slice  "
                  f"({r / w / base:.1f}x the authors' per core; the bare read is {bare / (r / w):.2f}x faster per core)")

        from ich_nb.cache import cached_images, series_entry
        series = [g.sort_values('slice_idx').path.tolist() for _, g in slices.groupby('series_id')]
        mem = rate(n, lambda: [series_entry(np.stack([hounsfield(read_dicom(p), p, dtype=np.int16) for p in ps]), cache_size) for ps in series])
        print(f"cache     the same work at {cache_size} px in memory (no file written), 1 core: {mem:6.1f} slices/s  "
              f"(the bare read is {bare / mem:.2f}x faster)")
        blob = np.random.default_rng(0).integers(0, 255, (28, cache_size, cache_size, 4), np.uint8)
        (tmp / 'disk').mkdir()
        w = rate(16 * blob.nbytes / 1e6, lambda: [np.save(tmp / 'disk' / f'{i}.npy', blob) for i in range(16)])
        print(f"disk      writing new files on this machine: {w:8.0f} MB/s (npy at {cache_size} px: {w * 1e6 / blob[0].nbytes:.0f} slices/s at most)")
        picks = slices.sample(min(n, 200), random_state=0)
        for fmt in ('npy', 'png'):
            c = tmp / f'cache_{cache_size}_{fmt}_1'
            r = rate(len(picks), lambda: [cached_images(c, x.series_id, x.slice_idx, x.n_slices, 'slc', fmt) for x in picks.itertuples()])
            print(f"reading   one slc input from the {fmt} cache at {cache_size} px:  {r:8.0f} images/s")
        npz = tmp / 'npz'; npz.mkdir()
        entries = {sid: np.load(tmp / f'cache_{cache_size}_npy_1' / f'{sid}.npy') for sid in slices.series_id.unique()}
        r = rate(n, lambda: [np.savez_compressed(npz / f'{sid}.npz', hu=e) for sid, e in entries.items()])
        nbytes = sum(f.stat().st_size for f in npz.iterdir()) / n
        print(f"cache     the same HU written as compressed npz (zlib), 1 core: {r:8.1f} slices/s  {nbytes:9.0f} bytes/slice")
        r = rate(len(picks), lambda: [np.load(npz / f'{x.series_id}.npz')['hu'][[max(x.slice_idx - 1, 0), x.slice_idx, min(x.slice_idx + 1, x.n_slices - 1)]]
                                      for x in picks.itertuples()])
        print(f"reading   one slc input's HU from npz (the whole series decompressed): {r:6.0f} images/s")
        jpgs = [tmp / 'authors' / f'{x.series_id}_{x.slice_idx}_slc.jpg' for x in picks.itertuples()]
        r = rate(len(jpgs), lambda: [np.asarray(Image.open(f)) for f in jpgs])
        print(f"reading   one slc input from the authors' JPEG at {size} px: {r:8.0f} images/s")

        sp = split_patients(st, seed=0)
        lab = slices.merge(sp[['study_id', 'split']], on='study_id')
        from ich_nb.cnn import slice_dls
        for nw in (0, 2):
            dls = slice_dls(lab, tmp / f'cache_{cache_size}_npy_1', 'slc', bs=32, num_workers=nw, device='cpu', size=size)
            batches = len(dls.train)
            r = rate(batches * 32, lambda: [None for _ in dls.train])
            print(f"loading   slc batches of 32 at {size} px from {cache_size} px, augmented and resized on the CPU, "
                  f"num_workers={nw}: {r:7.1f} images/s")

        peak_memory(tmp, peak, cache_size)
    finally:
        shutil.rmtree(tmp)


def peak_memory(tmp, sizes, cache_size, matrix=512):
    "Peak RSS of indexing and caching a phantom of each number of studies in `sizes`, each in a fresh process."
    for k in sizes:
        sub = tmp / f'peak{k}'
        make_phantom(sub, n_studies=k, layout='rsna', site='A', matrix=matrix, workers=2, progress=False)
        out = subprocess.run([sys.executable, '-c', PEAK, sub, tmp / f'peakcache{k}', str(cache_size)],
                             capture_output=True, text=True, check=True).stdout.split()
        print(f"memory    index + cache of {int(out[0]):4d} slices: peak RSS {int(out[1]) / 1024:6.0f} MB (main), "
              f"{int(out[2]) / 1024:6.0f} MB (largest worker)", flush=True)


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--studies', type=int, default=8)
    p.add_argument('--size', type=int, default=480, help="the CNNs' size")
    p.add_argument('--cache-size', type=int, default=512, help="the cache's size (the paper profile: the scans' 512 px)")
    p.add_argument('--peak', type=int, nargs='+', help='the numbers of studies to measure peak memory at (default: half and all)')
    p.add_argument('--peak-only', action='store_true', help='only the peak memory')
    p.add_argument('--peak-matrix', type=int, default=512, help="the phantom's matrix for --peak-only (headers weigh the same at any)")
    a = p.parse_args()
    a.peak = a.peak or (a.studies // 2, a.studies)
    if a.peak_only:
        tmp = Path(tempfile.mkdtemp())
        try: peak_memory(tmp, a.peak, a.cache_size, a.peak_matrix)
        finally: shutil.rmtree(tmp)
    else: main(a.studies, a.size, a.cache_size, a.peak)
