"""Reading RSNA's label file at its real size: `read_rsna_labels` (a line at a time) against the
pandas way it read it before (read_csv, split the IDs, pivot), each in a fresh process.

    .venv/bin/python benchmarks/labels.py [--images 752803]

The file is written by the package's `write_rsna_labels` (six rows an image, 1,000 rows repeated,
random labels), as large as Kaggle's stage_2_train.csv. Prints seconds and peak memory above the
imports (VmHWM) for each, and the ratios.
"""
import argparse, os, platform, shutil, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

import numpy as np
import pandas as pd

from ich_nb.labels import CLASSES, write_rsna_labels

READ = textwrap.dedent('''
    import sys, time, warnings
    warnings.simplefilter('ignore')
    import numpy as np, pandas as pd
    from ich_nb.labels import CLASSES, read_rsna_labels
    hwm = lambda: next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) / 1024

    def pandas_labels(path):
        "The baseline: read_rsna_labels as it was (pandas), checks left out."
        df = pd.read_csv(path, dtype={'ID': str, 'Label': str})
        parts = df.ID.str.rsplit('_', n=1, expand=True)
        df = pd.DataFrame({'sop_uid': parts[0], 'cls': parts[1], 'label': df.Label.astype(int)}).drop_duplicates()
        return df.pivot(index='sop_uid', columns='cls', values='label')[list(CLASSES)].astype(np.int8).rename_axis(columns=None)

    base, t = hwm(), time.perf_counter()
    table = (pandas_labels if sys.argv[2] == 'pandas' else read_rsna_labels)(sys.argv[1])
    print(time.perf_counter() - t, hwm() - base, len(table), table.memory_usage(deep=True).sum() / 2**20)
''')


def main(images):
    print(f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores, Python {platform.python_version()}, pandas {pd.__version__}; "
          f"{time.strftime('%Y-%m-%d')}")
    tmp = Path(tempfile.mkdtemp())
    try:
        rng = np.random.default_rng(0)
        ids = [f'ID_{h:09x}' for h in rng.choice(16**9, images, replace=False)]
        labels = pd.DataFrame((rng.random((images, 6)) < 0.05).astype(np.int8), columns=list(CLASSES),
                              index=pd.Index(ids, name='sop_uid'))
        write_rsna_labels(labels, tmp / 'stage_2_train.csv', duplicates=1000)
        print(f"{images:,} images, {6 * images + 1000:,} rows, {(tmp / 'stage_2_train.csv').stat().st_size / 2**20:.0f} MB")
        res = {}
        for how in ('pandas', 'read_rsna_labels'):
            out = subprocess.run([sys.executable, '-c', READ, tmp / 'stage_2_train.csv', how], capture_output=True, text=True, check=True)
            res[how] = [float(v) for v in out.stdout.split()]
            s, mb, n, table = res[how]
            print(f"{how:17s} {s:6.1f} s, peak {mb:6.0f} MB above the imports ({int(n):,} images, a table of {table:.0f} MB)")
        (s0, m0, *_), (s1, m1, *_) = res['pandas'], res['read_rsna_labels']
        print(f"read_rsna_labels: {s0 / s1:.1f}x faster, {m0 / m1:.1f}x less memory than the pandas way")
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=int, default=752_803, help="RSNA's stage 2 training set: 752,803 images")
    main(p.parse_args().images)
