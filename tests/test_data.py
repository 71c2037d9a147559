"ich_nb.data on the phantom in both layouts, on the real CQ500 sample, and through interruptions."
import os, shutil, signal, subprocess, sys, textwrap, time
import numpy as np
import pandas as pd
import pytest

from ich_nb.cache import build_cache, cached_images
from ich_nb.data import index_cq500, index_rsna, scan_headers, split_patients
from ich_nb.dicom import read_series
from ich_nb.labels import CLASSES
from ich_nb.phantom import make_phantom
from ich_nb.windowing import preprocess


@pytest.fixture(scope='module')
def rsna(tmp_path_factory):
    root = tmp_path_factory.mktemp('rsna')
    make_phantom(root, n_studies=30, layout='rsna', site='A', matrix=64, progress=False)
    return root


def test_site_a_in_both_layouts_gives_the_same_study_table(tmp_path):
    make_phantom(tmp_path / 'r', n_studies=12, layout='rsna', site='A', matrix=64, progress=False, reader_error=0)
    make_phantom(tmp_path / 'c', n_studies=12, layout='cq500', site='A', matrix=64, progress=False, reader_error=0)
    with pytest.warns(UserWarning, match='duplicated rows'):
        _, r = index_rsna(tmp_path / 'r', progress=False)
    _, c = index_cq500(tmp_path / 'c', progress=False)
    cols = ['study_id', 'patient_id'] + list(CLASSES)
    pd.testing.assert_frame_equal(r[cols], c[cols])
    assert r['any'].sum() > 0


def test_no_patient_on_both_sides(rsna):
    with pytest.warns(UserWarning):
        slices, studies = index_rsna(rsna, progress=False)
    assert studies.patient_id.nunique() < len(studies)              # the phantom has repeat patients
    for seed in range(5):
        sp = split_patients(studies, seed=seed)
        train, valid = (set(sp.patient_id[sp.split == s]) for s in ('train', 'valid'))
        assert train and valid and not train & valid
        assert 0.1 < (sp.split == 'valid').mean() < 0.3
    assert (slices.groupby('study_id')['any'].max().sort_index() == studies.set_index('study_id')['any'].sort_index()).all()


def test_real_cq500_series_indexes_with_the_real_reads(samples, tmp_path):
    for folder in ('CQ500CT0 CQ500CT0', 'renamed'):     # by folder name, and by PatientID where the name says nothing
        shutil.copytree(samples / 'cq500_CT-0_series_0.625mm_even_instances', tmp_path / folder / 'Unknown Study' / 'CT 0.625mm')
        slices, studies = index_cq500(tmp_path, reads=samples / 'cq500_reads_subset.csv', progress=False, mode='one')
        assert studies.name.tolist() == ['CQ500-CT-0'] and len(slices) == 119
        assert studies.loc[0, list(CLASSES)].tolist() == [0] * 6          # negative by majority: only R1 called it
        assert studies.choice[0] == 'other series nearest 5 mm (0.625 mm, 119 slices, of 1 series)'   # '4cc sec 150cc D3D on': not guessed
        assert (np.diff(slices.z) > 0).all()
        shutil.rmtree(tmp_path / folder)


def test_header_cache_rereads_only_changed_files(rsna, tmp_path):
    files = sorted((rsna / 'stage_2_train').glob('*.dcm'))[:20]
    cache = tmp_path / 'headers.csv'
    first = scan_headers(files, cache, progress=False)
    marked = pd.read_csv(cache)
    marked['description'] = 'from the cache'
    marked.to_csv(cache, index=False)
    os.utime(files[0], ns=(time.time_ns(), time.time_ns()))         # one file changed since
    again = scan_headers(files, cache, progress=False)
    assert (again.description == 'from the cache').sum() == 19
    assert again.set_index('path').loc[str(files[0]), 'description'] == first.set_index('path').loc[str(files[0]), 'description']


def test_headers_read_in_a_given_pool_are_the_same(rsna, tmp_path):
    from concurrent.futures import ProcessPoolExecutor
    files = sorted((rsna / 'stage_2_train').glob('*.dcm'))[:40]
    (tmp_path / 'broken.dcm').write_bytes(b'not dicom at all')
    files.append(tmp_path / 'broken.dcm')

    class Counted(ProcessPoolExecutor):
        maps = 0
        def map(self, *args, **kw): Counted.maps += 1; return super().map(*args, **kw)
    with Counted(2) as pool:
        pooled = scan_headers(files, workers=2, progress=False, pool=pool)
        assert Counted.maps == 1 and pool.submit(int, 3).result() == 3       # used, and left open for its owner
    pd.testing.assert_frame_equal(pooled, scan_headers(files, workers=1, progress=False))
    assert pooled.error.notna().sum() == 1


def test_unreadable_files_are_skipped_and_counted(rsna, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(rsna, root)
    victim = sorted((root / 'stage_2_train').glob('*.dcm'))[3]
    victim.write_bytes(b'not dicom at all')
    with pytest.warns(UserWarning, match=r"'unreadable': 1.*is not a DICOM file"):
        slices, _ = index_rsna(root, progress=False)
    assert victim.stem not in set(slices.sop_uid)


def test_cache_matches_the_pipelines_and_reports_failures(rsna, tmp_path):
    with pytest.warns(UserWarning):
        slices, _ = index_rsna(rsna, progress=False)
    slices = slices[slices.series_id.isin(slices.series_id.unique()[:4])]
    bad = slices.path.iloc[-1]
    root = tmp_path / 'data'; shutil.copytree(rsna / 'stage_2_train', root)
    slices = slices.assign(path=[str(root / os.path.basename(p)) for p in slices.path])
    bad = str(root / os.path.basename(bad))
    data = open(bad, 'rb').read(); open(bad, 'wb').write(data[:len(data) // 2])      # a truncated download
    for fmt in ('npy', 'png'):
        s = build_cache(slices, tmp_path / fmt, 32, fmt=fmt, progress=False)
        assert (s['series'], s['written'], s['failed']) == (4, 3, 1)
        assert list(s['reasons']) == ['pixel data cannot be decoded']
        sid = slices.series_id.unique()[0]
        one = slices[slices.series_id == sid]
        vol, _ = read_series(one.path.tolist())
        for p in ('raw', 'wdw', 'slc'):
            direct = preprocess(vol, p, 32)
            got = np.stack([cached_images(tmp_path / fmt, sid, i, len(one), p, fmt) for i in range(len(one))])
            assert (got == direct).all(), (fmt, p)


KILLABLE = textwrap.dedent('''
    import sys, pandas as pd
    from ich_nb.cache import build_cache
    slices = pd.read_csv(sys.argv[1])
    build_cache(slices, sys.argv[2], int(sys.argv[3]), fmt=sys.argv[4], workers=2, progress=False)
''')


@pytest.mark.parametrize('fmt', ['npy', 'png'])
def test_killed_cache_build_resumes_to_the_same_result(rsna, tmp_path, fmt):
    with pytest.warns(UserWarning):
        slices, _ = index_rsna(rsna, progress=False)
    slices.to_csv(tmp_path / 'slices.csv', index=False)
    clean = build_cache(slices, tmp_path / 'clean', 128, fmt=fmt, progress=False)
    assert clean['written'] == slices.series_id.nunique()
    proc = subprocess.Popen([sys.executable, '-c', KILLABLE, tmp_path / 'slices.csv', tmp_path / 'killed', '128', fmt],
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any((tmp_path / 'killed').glob('[!.]*')): time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    done_before = len(list((tmp_path / 'killed').glob('[!.]*')))
    assert 0 < done_before < clean['series'], 'the run should have been killed part way'
    (tmp_path / 'killed' / f'.{slices.series_id.iloc[-1]}.99.tmp').write_bytes(b'half a file')   # as a kill mid-write leaves
    resumed = build_cache(slices, tmp_path / 'killed', 128, fmt=fmt, progress=False)
    assert resumed['already_done'] == done_before and resumed['written'] == clean['series'] - done_before
    assert not list((tmp_path / 'killed').glob('.*'))
    for f in (tmp_path / 'clean').rglob('*'):
        if f.is_file(): assert f.read_bytes() == (tmp_path / 'killed' / f.relative_to(tmp_path / 'clean')).read_bytes()
