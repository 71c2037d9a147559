"""The bad-input corpus of tests/BAD_INPUTS.md, made here, and what happens to each case at each level:
a single read, indexing (`scan_headers`, `index_rsna`, `index_cq500`), the image cache, and the labels."""
import re, shutil, warnings
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from pydicom.dataelem import DataElement
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, generate_uid

from ich_nb.cache import build_cache
from ich_nb.data import index_cq500, index_rsna, scan_headers, slice_table
from ich_nb.dicom import DicomError, MAX_HU, ct_dataset, hounsfield, read_dicom, read_series
from ich_nb.labels import CLASSES, CQ500_COLUMNS, DatasetError, read_cq500_reads, read_rsna_labels
from ich_nb.phantom import make_phantom
from ich_nb.windowing import preprocess

HEAD = np.full((32, 32), 30.); HEAD[:2] = -1000.           # brain, and a strip of air


def slice_ds(i=0, series=None, size=32, **kw):
    "Slice `i` of a plain axial series, 5 mm apart."
    return ct_dataset(np.resize(HEAD, (size, size)), position=(0., 0., 5. * i), instance=i + 1,
                      series_uid=series, study_uid=kw.pop('study_uid', '1.2.3'), patient_id='P1', **kw)


def save(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return path


# Each file case: how to make it from a good slice at `path`, what a single read says (a DicomError
# matching the text, or None: it reads), and what indexing says (the skip reason, or None: indexed).
def not_dicom(p): p.write_text('patient notes, not an image')
def folder_named_like_a_file(p): p.mkdir()
def truncated_header(p): save(slice_ds(), p); p.write_bytes(p.read_bytes()[:300])
def truncated_pixels(p): save(slice_ds(), p); p.write_bytes(p.read_bytes()[:-500])
def no_pixel_data(p): ds = slice_ds(); del ds.PixelData; save(ds, p)
def not_ct(p): ds = slice_ds(); ds.Modality = 'MR'; save(ds, p)
def no_rescale_tags(p): ds = slice_ds(signed=True, intercept=0., bits_stored=16); del ds.RescaleSlope, ds.RescaleIntercept; save(ds, p)
def multi_valued_rescale(p): ds = slice_ds(); ds.RescaleIntercept = [-1024, 0]; save(ds, p)
def word_for_rescale(p): ds = slice_ds(); ds['RescaleIntercept'] = DataElement(0x00281052, 'LO', 'minus 1024'); save(ds, p)
def odd_window_tags(p): ds = slice_ds(); ds.WindowCenter = [40, 400]; ds['WindowWidth'] = DataElement(0x00281051, 'LO', 'wide'); save(ds, p)
def unsupported_syntax(p): ds = slice_ds(); ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.4.100'; ds.PixelData = encapsulate([b'\0mpeg' * 40]); save(ds, p)
def undecodable_stream(p): ds = slice_ds(); ds.file_meta.TransferSyntaxUID = JPEG2000Lossless; ds.PixelData = encapsulate([b'\0not j2k' * 40]); save(ds, p)
def compressed_cut_short(p): ds = slice_ds(); ds.compress(JPEG2000Lossless, encoding_plugin='pylibjpeg'); save(ds, p); p.write_bytes(p.read_bytes()[:-100])
def absurd_values(p): save(ct_dataset(np.array([[30., 30000.], [-3000., 40.]]), signed=True, intercept=0., bits_stored=16), p)
def non_axial(p): save(slice_ds(orientation=(0., 1., 0., 0., 0., -1.)), p)                 # sagittal
def two_number_position(p): ds = slice_ds(); ds.ImagePositionPatient = [0., 0.]; save(ds, p)
def no_series_uid(p): ds = slice_ds(); del ds.SeriesInstanceUID; save(ds, p)
def slope_zero(p): ds = slice_ds(); ds.RescaleSlope = 0; save(ds, p)
def slope_absurd(p): ds = slice_ds(); ds.RescaleSlope = 1000; save(ds, p)
def slope_nan(p): ds = slice_ds(); ds['RescaleSlope'] = DataElement(0x00281053, 'DS', 'NaN'); save(ds, p)


FILE_CASES = {  # case: (maker, single read, indexing)
    'not DICOM':                   (not_dicom, 'is not a DICOM file', 'is not a DICOM file'),
    'a folder named like a file':  (folder_named_like_a_file, 'is a folder', 'is a folder'),
    'truncated in the header':     (truncated_header, 'holds no data elements: it is cut short', 'it is cut short'),
    'truncated in the pixels':     (truncated_pixels, 'pixel data cannot be decoded', 'pixel data cut short'),
    'no pixel data':               (no_pixel_data, 'has no pixel data', 'no pixel data'),
    'not CT (MR)':                 (not_ct, 'is not a CT image (Modality MR)', 'not a CT image'),
    'rescale tags missing':        (no_rescale_tags, None, None),
    'rescale tag multi-valued':    (multi_valued_rescale, None, None),
    'rescale tag not a number':    (word_for_rescale, "RescaleIntercept is 'minus 1024', not a number", "RescaleIntercept is 'minus 1024'"),
    'window tags odd':             (odd_window_tags, None, None),
    'unsupported transfer syntax': (unsupported_syntax, 'which pydicom cannot decode', 'which pydicom cannot decode'),
    'undecodable JPEG 2000':       (undecodable_stream, 'pixel data cannot be decoded', None),
    'JPEG 2000 cut short':         (compressed_cut_short, 'it is cut short', 'it is cut short'),
    'absurd pixel values':         (absurd_values, None, None),
    'not axial (sagittal)':        (non_axial, None, 'not an axial slice'),
    'position of two numbers':     (two_number_position, None, None),
    'no SeriesInstanceUID':        (no_series_uid, None, 'no StudyInstanceUID or SeriesInstanceUID'),
    'rescale slope 0':             (slope_zero, 'RescaleSlope is 0', 'RescaleSlope is 0'),
    'rescale slope absurd (1000)': (slope_absurd, 'RescaleSlope is 1000', 'RescaleSlope is 1000'),
    'rescale slope NaN':           (slope_nan, 'are not finite numbers', 'are not finite numbers'),
}


@pytest.mark.parametrize('case', FILE_CASES)
def test_file_case_read_and_indexed(case, tmp_path):
    make, read_says, index_says = FILE_CASES[case]
    path = tmp_path / 'x.dcm'
    make(path)
    if read_says:
        with pytest.raises(DicomError, match=re.escape(read_says)) as e:
            hounsfield(read_dicom(path))
        assert str(path) in str(e.value)                                    # the message names the file
    else:
        hu = hounsfield(read_dicom(path))
        assert hu.dtype == np.float32 and -1024 <= hu.min() and hu.max() <= MAX_HU
    row = scan_headers([path], workers=1, progress=False).iloc[0]
    if index_says: assert index_says in row.error
    else: assert pd.isna(row.error) and row.rows > 0


def test_what_the_readable_cases_read_as(tmp_path):
    good = hounsfield(read_dicom(save(slice_ds(), tmp_path / 'good.dcm')))
    for make in (multi_valued_rescale, odd_window_tags, no_rescale_tags):     # first value; window tags unused; defaults 1, 0
        make(tmp_path / f'{make.__name__}.dcm')
        assert (hounsfield(read_dicom(tmp_path / f'{make.__name__}.dcm')) == good).all(), make.__name__
    absurd_values(tmp_path / 'absurd.dcm')
    assert hounsfield(read_dicom(tmp_path / 'absurd.dcm')).tolist() == [[30, MAX_HU], [-1024, 40]]


def series(folder, n=5, skip=(), **kw) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    uid = generate_uid()
    return [save(slice_ds(i, uid, **kw), folder / f'{i:03d}.dcm') for i in range(n) if i not in skip]


def test_series_with_no_slices_and_with_one(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DicomError, match='empty: holds no DICOM files'):
        read_series(tmp_path / 'empty')
    series(tmp_path / 'one', n=1)
    vol, df = read_series(tmp_path / 'one')
    assert vol.shape == (1, 32, 32) and df.n_slices.tolist() == [1]
    assert preprocess(vol, 'slc').shape == (1, 32, 32, 3)                      # its own neighbour at both ends
    s = build_cache(slice_table(scan_headers(df.path, workers=1, progress=False)), tmp_path / 'cache', 16, workers=1, progress=False)
    assert (s['written'], s['failed']) == (1, 0)


def test_series_with_mixed_sizes(tmp_path):
    files = series(tmp_path / 's', n=4)
    odd = slice_ds(4, read_dicom(files[0]).SeriesInstanceUID, size=16)      # a small slice in the series, like a localizer
    save(odd, tmp_path / 's' / '004.dcm')
    with pytest.raises(DicomError, match=r"mixes image sizes \(004.dcm is 16x16; 000.dcm is 32x32\)"):
        read_series(tmp_path / 's')
    headers = scan_headers(sorted((tmp_path / 's').glob('*.dcm')), workers=1, progress=False)
    assert headers.error.notna().tolist() == [False] * 4 + [True]
    assert 'image size 16x16 differs from the rest of its series (32x32)' in headers.error.iloc[4]
    assert len(slice_table(headers)) == 4


def test_series_with_duplicated_and_missing_slices(tmp_path):
    files = series(tmp_path / 's', n=6, skip={3})                            # slice 3 never arrived
    shutil.copy(files[1], tmp_path / 's' / 'copy.dcm')                       # slice 1 twice
    with pytest.warns(UserWarning) as w:
        vol, df = read_series(tmp_path / 's')
    said = ' '.join(str(x.message) for x in w)
    assert 'dropped 1 slice(s) at the same position' in said and '1 gap(s) in the slice positions' in said and 'after z = 10.0 mm' in said
    assert len(vol) == 5 and df.z.tolist() == [0, 5, 10, 20, 25]


def rsna_with_bad_files(root):
    "A phantom in RSNA's layout with one file of each file case mixed in, and a study of only bad files."
    make_phantom(root, n_studies=4, layout='rsna', site='A', matrix=32, workers=1, progress=False, duplicates=0)
    folder = root / 'stage_2_train'
    victim = sorted(folder.glob('ID_*.dcm'))[0]                              # a phantom slice whose stream breaks
    ds = read_dicom(victim)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b'\0not j2k' * 40])
    save(ds, victim)
    bad = {}
    for case, (make, _, _) in FILE_CASES.items():
        path = folder / f"ID_{re.sub(r'[^a-z]', '', case)}.dcm"
        make(path)
        bad[case] = path
    return bad, victim


def test_rsna_folder_with_bad_files_indexes_caches_and_reports(tmp_path):
    bad, victim = rsna_with_bad_files(tmp_path / 'rsna')
    with pytest.warns(UserWarning, match='unreadable'):
        slices, studies = index_rsna(tmp_path / 'rsna', workers=1, progress=False, report=tmp_path / 'skipped.csv')
    report = pd.read_csv(tmp_path / 'skipped.csv')
    should_skip = {str(bad[c]) for c, (_, _, says) in FILE_CASES.items() if says}
    unlabelled = {str(bad[c]) for c, (_, _, says) in FILE_CASES.items() if not says}   # readable, but not in the csv
    assert set(report.path) == should_skip | unlabelled
    assert (report.set_index('path').loc[list(unlabelled), 'error'] == 'no labels in stage_2_train.csv').all()
    assert not set(slices.path) & set(report.path) and len(studies) == 4
    s = build_cache(slices, tmp_path / 'cache', 16, workers=1, progress=False)
    sid = slices.series_id[slices.path == str(victim)].iloc[0]
    assert s['failed'] == 1 and list(s['failures']) == [sid] and 'pixel data cannot be decoded' in s['failures'][sid]
    assert s['written'] == 3                                                 # the other studies go on


def test_a_study_with_no_usable_slices_is_left_out_and_said(tmp_path):
    root = tmp_path / 'cq500'
    make_phantom(root, n_studies=3, layout='cq500', site='B', matrix=32, workers=1, progress=False)
    gone = sorted(root.glob('CQ500CT*'))[1]
    for f in gone.rglob('*.dcm'): f.write_text('overwritten')
    with pytest.warns(UserWarning, match=r'1 studies of reads.csv have no usable images and are left out, e.g. CQ500-CT-1'):
        slices, studies = index_cq500(root, workers=1, progress=False, report=tmp_path / 'skipped.csv')
    assert sorted(studies.name) == ['CQ500-CT-0', 'CQ500-CT-2']
    skipped = pd.read_csv(tmp_path / 'skipped.csv')
    assert len(skipped) == len(list(gone.rglob('*.dcm'))) + 1                   # its files, and the study itself
    assert skipped.iloc[-1].tolist() == [str(gone), 'no usable images (study CQ500-CT-1 of reads.csv)']


def test_a_study_folder_without_a_row_in_reads_csv_is_left_out_and_listed(tmp_path):
    root = tmp_path / 'cq500'
    make_phantom(root, n_studies=3, layout='cq500', site='B', matrix=32, workers=1, progress=False)
    reads = pd.read_csv(root / 'reads.csv')
    reads[reads.name != 'CQ500-CT-2'].to_csv(root / 'reads.csv', index=False)
    with pytest.warns(UserWarning, match=r'1 studies have no row in reads.csv and are left out, e.g. CQ500-CT-2'):
        slices, studies = index_cq500(root, workers=1, progress=False, report=tmp_path / 'skipped.csv')
    assert sorted(studies.name) == ['CQ500-CT-0', 'CQ500-CT-1']
    assert pd.read_csv(tmp_path / 'skipped.csv').values.tolist() == [[str(root / 'CQ500CT2 CQ500CT2'), 'no row in reads.csv (study CQ500-CT-2)']]


# Labels: every problem is a DatasetError that names the file and the row, or a warning with counts.
RSNA_ROWS = [f'ID_{s}_{c},{v}' for s, v in (('a', 0), ('b', 1)) for c in
             ('epidural', 'intraparenchymal', 'intraventricular', 'subarachnoid', 'subdural', 'any')]

LABEL_CASES = {  # case: (csv lines after the header, header, the DatasetError's text or None)
    'wrong header':          (RSNA_ROWS, 'Image,Value', "columns are ['Image', 'Value'], expected ['ID', 'Label']"),
    'non-numeric label':     (RSNA_ROWS[:3] + ['ID_a_subarachnoid,yes'] + RSNA_ROWS[4:], 'ID,Label', 'line 5: ID_a_subarachnoid,yes'),
    'unknown class':         (RSNA_ROWS + ['ID_a_chronic,0'], 'ID,Label', 'line 14: ID_a_chronic,0'),
    'missing rows':          (RSNA_ROWS[:-1], 'ID,Label', 'images lack some of the six classes, e.g. ID_b'),
    'duplicated rows':       (RSNA_ROWS + RSNA_ROWS[:2], 'ID,Label', None),
    'duplicates that disagree': (RSNA_ROWS + ['ID_b_subdural,0'], 'ID,Label', 'images have rows that disagree, e.g. ID_b'),
    'a third field':         (RSNA_ROWS[:5] + ['ID_a_any,0,1'] + RSNA_ROWS[6:], 'ID,Label', 'expected 2 fields in line 7, saw 3'),
    'not UTF-8':             (RSNA_ROWS + ['ID_\xe9_any,0'], 'ID,Label', "cannot be read as RSNA labels ('utf-8' codec"),
    'a header and no rows':  ([], 'ID,Label', 'has a header and no label rows'),
}


@pytest.mark.parametrize('case', LABEL_CASES)
def test_rsna_label_case(case, tmp_path):
    rows, header, says = LABEL_CASES[case]
    path = tmp_path / 'stage_2_train.csv'
    path.write_bytes(('\n'.join([header] + rows) + '\n').encode('latin-1'))
    if says:
        with pytest.raises(DatasetError, match=re.escape(says)) as e: read_rsna_labels(path)
        assert str(path) in str(e.value)
    else:
        with pytest.warns(UserWarning, match='dropped 2 duplicated rows'):
            assert read_rsna_labels(path).to_dict('index')['ID_b']['any'] == 1


def test_rsna_labels_as_spreadsheets_save_them(tmp_path):
    "A byte-order mark, Windows line ends, quotes and blank lines read as the plain file."
    plain, saved = tmp_path / 'plain.csv', tmp_path / 'saved.csv'
    plain.write_text('ID,Label\n' + '\n'.join(RSNA_ROWS) + '\n')
    saved.write_bytes(('\ufeffID,Label\r\n\r\n' + ''.join(f'"{r.split(",")[0]}","{r.split(",")[1]}"\r\n' for r in RSNA_ROWS)).encode('utf-8'))
    pd.testing.assert_frame_equal(read_rsna_labels(saved), read_rsna_labels(plain))
    assert read_rsna_labels(plain).loc['ID_b'].tolist() == [1] * 6


def test_labels_and_images_that_do_not_match(tmp_path):
    root = tmp_path / 'rsna'
    make_phantom(root, n_studies=3, layout='rsna', site='A', matrix=32, workers=1, progress=False, duplicates=0)
    csv = pd.read_csv(root / 'stage_2_train.csv')
    first = csv.ID.str.rsplit('_', n=1).str[0].iloc[0]
    extra = pd.DataFrame({'ID': [f'ID_notondisk_{c}' for c in ('epidural', 'intraparenchymal', 'intraventricular', 'subarachnoid', 'subdural', 'any')], 'Label': 0})
    pd.concat([csv[~csv.ID.str.startswith(first + '_')], extra]).to_csv(root / 'stage_2_train.csv', index=False)
    with pytest.warns(UserWarning, match=r"'unlabelled': 1, 'labels_without_file': 1"):
        slices, _ = index_rsna(root, workers=1, progress=False, report=tmp_path / 'skipped.csv')
    assert first not in set(slices.sop_uid)
    assert pd.read_csv(tmp_path / 'skipped.csv').error.tolist() == ['no labels in stage_2_train.csv']


def test_reads_csv_problems(tmp_path):
    reads = pd.DataFrame(0, index=range(2), columns=CQ500_COLUMNS).assign(name=['CQ500-CT-0', 'CQ500-CT-1'], Category='B1')
    reads.drop(columns=[c for c in CQ500_COLUMNS if c.startswith('R3:')]).to_csv(tmp_path / 'two_readers.csv', index=False)
    with pytest.raises(DatasetError, match=re.escape("two_readers.csv: lacks the columns ['R3:ICH', 'R3:IPH'")):
        read_cq500_reads(tmp_path / 'two_readers.csv')
    blank = reads.astype(object); blank.loc[1, 'R3:SAH'] = None
    blank.to_csv(tmp_path / 'blank.csv', index=False)
    with pytest.raises(DatasetError, match=re.escape('line 3 (CQ500-CT-1): R3:SAH is blank')):
        read_cq500_reads(tmp_path / 'blank.csv')
    pd.concat([reads, reads.iloc[:1]]).to_csv(tmp_path / 'twice.csv', index=False)
    with pytest.raises(DatasetError, match='study CQ500-CT-0 has more than one row'):
        read_cq500_reads(tmp_path / 'twice.csv')
    for name, cell, says in [('float.csv', '1.0', "line 3 (CQ500-CT-1): R1:SDH is '1.0'"), ('space.csv', ' 1', "R1:SDH is ' 1'")]:
        odd = reads.astype(object); odd.loc[1, 'R1:SDH'] = cell
        odd.to_csv(tmp_path / name, index=False)
        with pytest.raises(DatasetError, match=re.escape(says)): read_cq500_reads(tmp_path / name)
    reads.assign(name=['CQ500-CT-0', 'CQ500-CT-1 ']).to_csv(tmp_path / 'name.csv', index=False)
    with pytest.raises(DatasetError, match=re.escape("line 3: study name 'CQ500-CT-1 ' is blank or has spaces around it")):
        read_cq500_reads(tmp_path / 'name.csv')


def test_a_split_without_positives_stops_the_run_before_training(tmp_path):
    import subprocess, sys
    r = subprocess.run([Path(sys.executable).parent / 'ich-nb', 'reproduce', '--run-dir', tmp_path / 'run', '-p', 'data.prevalence', '0.05',
                        '-p', 'data.train_studies', '10', '-p', 'data.test_studies', '4', '-p', 'data.matrix', '32'],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and 'DatasetError: the valid split has 2 studies, 0 of them with a haemorrhage' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'run' / 'cache').exists() and not (tmp_path / 'run' / 'models').exists()


def test_the_table_lists_every_case():
    "BAD_INPUTS.md, the table of cases and outcomes, names each case tested here and no other."
    table = (Path(__file__).parent / 'BAD_INPUTS.md').read_text()
    listed = set(re.findall(r'^\| ([^|]+?) +\|', table, re.M)) - {'Case', '---'}
    listed = {c for c in listed if not set(c) <= set('-: ')}
    assert listed == set(FILE_CASES) | set(LABEL_CASES) | SERIES_CASES | OTHER_CASES | RUN_CASES | {'Input'}


SERIES_CASES = {'no slices', 'one slice', 'mixed image sizes', 'duplicated slice', 'missing slice',
                'a study with no usable slices', 'signed pixels marked unsigned', 'one value throughout'}
RUN_CASES = {'`-p workers 0`, `-p seed -1`, `-p data.prevalence 2`, `-p split.valid_pct 0.01`', '`-p cnn.arch nosuchnet`',
             '`--data-dir` with a phantom profile', '`--gpus 3` with a batch of 32', '`--force` on a folder with files that is not a run',
             '`--run-dir` a file', 'a second `reproduce` into a run folder in use', 'Ctrl-C',
             '`predict --out` in a missing folder, `--workers 0`', 'a kill (`kill -9`) while caching'}
OTHER_CASES = {'image without labels', 'labels without an image', 'reads.csv without a reader', 'reads.csv with a blank call',
               'reads.csv with a study twice', 'reads.csv with a call `1.0` or ` 1`', 'reads.csv with spaces around a name',
               'a study folder without a row in reads.csv', 'a split without positive or without negative studies'}


def test_implausible_series_are_refused_in_the_cache_and_in_triage(tmp_path):
    "Signed pixels marked unsigned (air read as 64,536) and a series of one value: not cached, listed with the reason; `predict` refuses them."
    from ich_nb.dicom import check_head_ct, read_volume
    good = series(tmp_path / 'good')
    unsigned = series(tmp_path / 'unsigned', signed=True, intercept=0., bits_stored=16)
    for f in unsigned:                                                   # the same pixels, declared unsigned
        ds = read_dicom(f); ds.PixelRepresentation = 0; save(ds, f)
    flat = tmp_path / 'flat'; flat.mkdir(); uid = generate_uid()
    for i in range(3): save(ct_dataset(np.full((32, 32), 20.), position=(0., 0., 5. * i), instance=i + 1, series_uid=uid), flat / f'{i}.dcm')
    check_head_ct(read_volume(good), 'good')
    for folder, why in ((tmp_path / 'unsigned', 'signed pixels read as unsigned'), (flat, 'throughout: no anatomy')):
        with pytest.raises(DicomError, match=why): check_head_ct(read_volume(sorted(folder.iterdir())), folder)
        rows = slice_table(scan_headers(sorted(folder.iterdir()), workers=1, progress=False))
        res = build_cache(rows, tmp_path / 'cache', 32, workers=1, progress=False)
        assert why in str(res), res
        assert not list((tmp_path / 'cache').glob(f'{rows.series_id.iloc[0]}*'))          # nothing cached for it


def test_run_folders_and_parameters_are_checked_before_anything_runs(tmp_path):
    "Up front, one line each: parameter ranges, --data-dir with a phantom, a folder that is not a run (never cleared), a file."
    import subprocess, sys
    ich_nb = Path(sys.executable).parent / 'ich-nb'
    def reproduce(*args):
        return subprocess.run([ich_nb, 'reproduce', *map(str, args)], capture_output=True, text=True, timeout=120)
    for args, says in [(['-p', 'workers', '0'], 'workers is 0'), (['-p', 'seed', '-1'], 'seed is -1'),
                       (['-p', 'data.prevalence', '2'], 'data.prevalence is 2'), (['-p', 'split.valid_pct', '0.01'], 'split.valid_pct is 0.01'),
                       (['-p', 'cnn.arch', 'nosuchnet'], "cnn.arch 'nosuchnet' is not a timm model"),
                       (['--data-dir', tmp_path], 'is for real data, and this profile makes a phantom'),
                       (['--gpus', '3'], 'does not split evenly among 3 processes')]:
        r = reproduce('--run-dir', tmp_path / 'run', *args)
        assert r.returncode == 2 and says in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
    mine = tmp_path / 'mine'; (mine / 'models').mkdir(parents=True); (mine / 'report.html').write_text('my own report')
    r = reproduce('--run-dir', mine, '--force')
    assert r.returncode == 2 and 'is not a run folder' in r.stderr and (mine / 'report.html').read_text() == 'my own report'
    (tmp_path / 'afile').write_text('x')
    r = reproduce('--run-dir', tmp_path / 'afile')
    assert r.returncode == 2 and 'is a file' in r.stderr


def test_a_second_reproduce_into_a_busy_run_folder_is_refused(tmp_path):
    import os, subprocess, sys
    from ich_nb.run import LOCK
    run = tmp_path / 'run'; run.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (run / LOCK).write_text(str(holder.pid))
        r = subprocess.run([Path(sys.executable).parent / 'ich-nb', 'reproduce', '--run-dir', run], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and f'in use by another ich-nb (process {holder.pid})' in r.stderr
    finally: holder.kill()


@pytest.mark.parametrize('wait', [0.5, 3, 8])   # while the kernel starts, while it runs a cell, later in the step
def test_ctrl_c_stops_with_one_line_and_frees_the_run_folder(tmp_path, wait):
    import os, signal, subprocess, sys, time
    from ich_nb.run import LOCK
    p = subprocess.Popen([Path(sys.executable).parent / 'ich-nb', 'reproduce', '--run-dir', tmp_path / 'run'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # as a terminal's, even where the tests run with Ctrl-C ignored (nohup, &)
    t = time.time()
    while not (tmp_path / 'run' / 'params.yaml').exists() and time.time() - t < 60: time.sleep(0.2)
    time.sleep(wait)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'interrupted; run the same command again' in err and 'Traceback' not in err, err[-2000:]
    assert not (tmp_path / 'run' / LOCK).exists()


def test_predict_checks_its_arguments_before_computing(tmp_path):
    import subprocess, sys
    ich_nb = Path(sys.executable).parent / 'ich-nb'
    for args, says in [(['--out', tmp_path / 'no' / 'such' / 'p.csv'], 'does not exist; create it'), (['--workers', '0'], '--workers is 0')]:
        r = subprocess.run([ich_nb, 'predict', tmp_path, '--run-dir', tmp_path, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and says in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_a_kill_during_caching_takes_its_workers_with_it(tmp_path):
    "Killed while caching (kill -9), the cache's worker processes exit too, and the cache stops growing."
    import os, signal, subprocess, sys, time
    make_phantom(tmp_path / 'rsna', n_studies=8, layout='rsna', site='A', matrix=128, workers=2, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        slices, _ = index_rsna(tmp_path / 'rsna', workers=2, progress=False)
    slices.to_csv(tmp_path / 'slices.csv', index=False)
    cache = tmp_path / 'cache'
    p = subprocess.Popen([sys.executable, '-c', 'import sys\nfrom ich_nb.cache import build_cache\nfrom ich_nb.files import read_table\n'
                          f'build_cache(read_table(sys.argv[1]), sys.argv[2], 128, workers=2, progress=False)', tmp_path / 'slices.csv', cache])
    t = time.time()
    while not (cache.is_dir() and any(cache.glob('*.npy'))) and time.time() - t < 60: time.sleep(0.05)
    workers = [int(c) for c in Path(f'/proc/{p.pid}/task/{p.pid}/children').read_text().split()]
    p.send_signal(signal.SIGKILL); p.wait()
    time.sleep(1)
    alive = [w for w in workers if Path(f'/proc/{w}').exists() and Path(f'/proc/{w}/stat').read_text().split()[2] != 'Z']
    made = sorted(cache.glob('*.npy'))
    time.sleep(2)
    assert workers and not alive and sorted(cache.glob('*.npy')) == made, (workers, alive)


def test_only_the_workers_module_makes_process_pools():
    "Every pool of worker processes is `workers.worker_pool`'s, which dies with its parent."
    src = Path(__file__).resolve().parents[1] / 'ich_nb'
    assert [f.name for f in src.glob('*.py') if 'ProcessPoolExecutor(' in f.read_text()] == ['workers.py']
