"""Ordering RSNA's slices at their real number: `slice_table`, which orders every series at once,
against the `slice_table` of commit 08a8e98, which ordered them series by series, each in a fresh
process.

    .venv/bin/python benchmarks/slice_table.py [--series 21744] [--baseline-series 2000]

The header table is made up to RSNA's shape: 21,744 series of 28 to 41 slices (about 750,000 rows;
RSNA has 752,803 files), RSNA-like IDs and paths, files named in random order, each series tilted
by its own angle up to 25 degrees, a copied slice in one series of 50 and a missing one in about
one of 100. The baseline is the package as it was at that commit (`git archive`, so run this in
the repository); it runs on the first `--baseline-series` series (about 4 ms a series) and its
time is scaled to the whole table. Prints seconds, and peak memory above the table (VmHWM) for the
new way.
"""
import argparse, os, platform, subprocess, sys, tarfile, tempfile, textwrap, time
from pathlib import Path

import numpy as np
import pandas as pd

from ich_nb.dicom import POSITIONS

BASELINE = '08a8e98'

ORDER = textwrap.dedent('''
    import sys, time, warnings
    warnings.simplefilter('ignore')
    import pandas as pd
    from ich_nb.data import slice_table
    hwm = lambda: next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) / 1024

    headers = pd.read_pickle(sys.argv[1])
    if len(sys.argv) > 2: headers = headers[headers.series_id.isin(headers.series_id.unique()[:int(sys.argv[2])])]
    base, t = hwm(), time.perf_counter()
    out = slice_table(headers)
    print(time.perf_counter() - t, hwm() - base, len(out), headers.series_id.nunique(), sys.modules['ich_nb'].__file__)
''')


def rsna_like_headers(n_series:int, seed:int=0) -> pd.DataFrame:
    "A header table shaped like RSNA's: one series a study, 28-41 slices 5 mm apart, tilted, shuffled names."
    rng = np.random.default_rng(seed)
    n = rng.integers(28, 42, n_series)
    sid = np.repeat(np.arange(n_series), n)
    k = np.concatenate([np.arange(m) for m in n]).astype(float)
    k += pd.Series(rng.random(len(k)) < 0.01 / 34).groupby(sid).cumsum().to_numpy()   # a slice missing now and then
    tilt = np.deg2rad(rng.uniform(0, 25, n_series))[sid]
    hexid = lambda m: [f'ID_{v:010x}' for v in rng.integers(0, 16**10, m)]
    studies, series = np.array(hexid(n_series)), np.array(hexid(n_series))
    df = pd.DataFrame(dict(path=[f'/data/rsna/stage_2_train/{v}.dcm' for v in hexid(len(k))], sop_uid=hexid(len(k)),
                           study_id=studies[sid], modality='CT', series_id=series[sid], patient_id=studies[sid],
                           instance_number=k + 1, rows=512., cols=512., thickness=5., description='', kernel='',
                           ipp_x=-125., ipp_y=-125. + 5 * k * np.sin(tilt), ipp_z=5 * k * np.cos(tilt),
                           iop_0=1., iop_1=0., iop_2=0., iop_3=0., iop_4=np.cos(tilt), iop_5=-np.sin(tilt),
                           size=525_000, mtime=0, error=np.nan))
    copies = df[df.series_id.isin(series[::50])].groupby('series_id').head(1).assign(path=lambda d: d.path + '.copy.dcm')
    return pd.concat([df, copies], ignore_index=True).astype({'error': object}).sort_values('path', ignore_index=True)


def package_at(rev:str, dest) -> Path:
    "The `ich_nb` of commit `rev`, unpacked into `dest` to put on PYTHONPATH."
    git = subprocess.Popen(['git', 'archive', rev, 'ich_nb'], stdout=subprocess.PIPE, cwd=Path(__file__).parents[1])
    with tarfile.open(fileobj=git.stdout, mode='r|') as tar: tar.extractall(dest, filter='data')
    return Path(dest)


def run_fresh(code:str, *args, pythonpath=None, cwd) -> list[str]:
    "What `code` prints in a fresh Python, the package from `pythonpath` (default: this checkout); its last word, the package's path, is checked."
    env = {**os.environ, 'PYTHONPATH': str(pythonpath)} if pythonpath else None
    out = subprocess.run([sys.executable, '-c', code, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    *words, package = out.stdout.split()
    assert Path(package).is_relative_to(pythonpath or Path(__file__).parents[1]), package     # the package meant
    return words


def main(n_series, baseline_series):
    print(f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores, Python {platform.python_version()}, pandas {pd.__version__}; "
          f"{time.strftime('%Y-%m-%d')}")
    headers = rsna_like_headers(n_series)
    assert list(headers.columns[headers.columns.str.startswith(('ipp', 'iop'))]) == POSITIONS
    print(f"header table: {len(headers):,} rows, {n_series:,} series, {headers.memory_usage(deep=True).sum() / 2**20:.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'headers.pkl'
        headers.to_pickle(path)
        t_new, m_new, rows, _ = map(float, run_fresh(ORDER, path, cwd=tmp))
        t_old, _, _, done = map(float, run_fresh(ORDER, path, baseline_series, pythonpath=package_at(BASELINE, Path(tmp) / 'old'), cwd=tmp))
    per = t_old / done
    print(f"slice_table, every series at once:        {t_new:7.2f} s, {m_new:4.0f} MB above the table, {rows:,.0f} slices ordered")
    print(f"slice_table of {BASELINE}, series by series: {t_old:7.2f} s for {done:,.0f} series ({per * 1e3:.1f} ms a series); "
          f"{per * n_series:.0f} s for all {n_series:,}")
    print(f"ratio: {per * n_series / t_new:.0f}x faster")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--series', type=int, default=21744, help="RSNA's stage 2 training set has 21,744 studies of one series each")
    p.add_argument('--baseline-series', type=int, default=2000)
    a = p.parse_args()
    main(a.series, a.baseline_series)
