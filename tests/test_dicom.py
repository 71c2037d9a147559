"ich_nb.dicom on real DICOM that nobody here made, and with the JPEG plugins hidden."
import subprocess, sys, textwrap, warnings
import numpy as np
import pandas as pd
import pytest
from pydicom.data import get_testdata_file

from ich_nb.dicom import DicomError, dicom_files, hounsfield, read_dicom, read_series, series_table
from ich_nb.windowing import brain_window, preprocess

RSNA = 'rsna_series_ID_fff502d5'
CQ500 = 'cq500_CT-0_series_0.625mm_even_instances'


def check_order(folder, df):
    "The slice table's order is ascending in the z of the sample's labels.csv."
    labels = pd.read_csv(folder / 'labels.csv').set_index('file')
    z = labels.loc[[p.split('/')[-1] for p in df.path], 'z'].to_numpy()
    assert len(df) == len(labels)
    assert (np.diff(z) > 0).all()


def test_rsna_series_tilted_and_shuffled(samples):
    folder = samples / RSNA
    files = dicom_files(folder)
    assert len(files) == 36 and all(f.suffix == '.dcm' for f in files)   # labels.csv left out
    shuffled = [files[i] for i in np.random.default_rng(1).permutation(len(files))]
    vol, df = read_series(shuffled)
    check_order(folder, df)
    assert vol.shape == (36, 512, 512) and vol.dtype == np.float32
    hdr = read_dicom(files[0], pixels=False)
    tilt = np.degrees(np.arccos(hdr.ImageOrientationPatient[4]))
    assert 7.5 < tilt < 8.5
    # the table steps ~5.05 mm along z; the tilted planes are 5 mm apart along their normal
    assert np.allclose(np.diff(df.z), 5.0, atol=0.01)
    assert 'SliceThickness' not in hdr
    # brain at the centre of a mid slice, air in the corner
    mid = vol[len(vol) // 2]
    assert 20 < np.median(mid[226:286, 226:286]) < 50
    assert mid[5, 5] < -900
    assert df.study_id.nunique() == 1 and (df.slice_idx == np.arange(36)).all() and (df.n_slices == 36).all()


def test_cq500_series_jpeg_lossless(samples):
    folder = samples / CQ500
    ds = read_dicom(next(folder.glob('*.dcm')))
    assert ds.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.4.70'
    vol, df = read_series(folder)
    check_order(folder, df)
    assert len(vol) == 119
    assert np.allclose(np.diff(df.z), 2 * 0.625 * np.cos(np.radians(8.5)), atol=0.02)  # even instances of a 0.625 mm series
    assert vol.min() == -1024                  # PixelPaddingValue -2000 became -1024 HU
    slc = preprocess(vol, 'slc')
    assert (slc[1:, ..., 0] == brain_window(vol[:-1])).all()


def test_external_files_decode(samples):
    for name in ['J2K_pixelrep_mismatch.dcm', 'CT-MONO2-16-brain.dcm']:
        img = hounsfield(read_dicom(samples / 'external_unlabelled_head_ct' / name))
        assert img.shape == (512, 512)
        assert 15 < np.median(img[226:286, 226:286]) < 50, name


def test_pydicom_data_cq500_slice():
    "A real CQ500 slice that ships on PyPI, so this runs everywhere."
    img = hounsfield(read_dicom(get_testdata_file('693_UNCR.dcm')))
    assert img.shape == (512, 512) and img.min() == -1024
    assert 20 < np.median(img[200:300, 200:300]) < 45


HIDE_PLUGINS = textwrap.dedent('''
    import sys
    class Hide:
        "Make the JPEG decoder plugins look uninstalled."
        names = {"pylibjpeg", "libjpeg", "openjpeg", "rle", "gdcm", "PIL", "jpeg_ls", "pyjpegls"}
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names: raise ModuleNotFoundError(name)
    sys.meta_path.insert(0, Hide())
    from ich_nb.dicom import DicomError, hounsfield, read_dicom
    try:
        hounsfield(read_dicom(sys.argv[1]))
    except DicomError as e:
        print(e)
    else:
        print("decoded")
''')


def decode_without_plugins(path) -> str:
    r = subprocess.run([sys.executable, '-c', HIDE_PLUGINS, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_jpeg2000_without_decoder_names_the_package():
    path = get_testdata_file('693_J2KR.dcm')
    assert hounsfield(read_dicom(path)).shape == (512, 512)          # decodes with the plugins installed
    msg = decode_without_plugins(path)
    assert '693_J2KR.dcm' in msg and 'JPEG 2000' in msg and 'pip install pylibjpeg pylibjpeg-openjpeg' in msg


def test_jpeg_lossless_without_decoder_names_the_package(samples):
    path = next((samples / CQ500).glob('*.dcm'))
    msg = decode_without_plugins(path)
    assert path.name in msg and 'JPEG Lossless' in msg and 'pip install pylibjpeg pylibjpeg-libjpeg' in msg


def test_uncompressed_decodes_without_plugins():
    assert decode_without_plugins(get_testdata_file('693_UNCR.dcm')) == 'decoded'


def test_folder_without_dicom(tmp_path):
    (tmp_path / 'labels.csv').write_text('a,b\n')
    with pytest.raises(DicomError, match='holds no DICOM files'):
        series_table(tmp_path)
    with pytest.raises(DicomError, match='is a folder'):
        read_dicom(tmp_path)


def test_pydicom_settings_are_left_as_they_were(tmp_path):
    "Importing and using the package leaves pydicom's global validation modes as the program set them."
    code = f'''
import pydicom.config as c
c.settings.reading_validation_mode = c.RAISE                # a program's own choice, before the package
before = (c.settings.reading_validation_mode, c.settings.writing_validation_mode)
from ich_nb.phantom import make_phantom
from ich_nb.data import index_rsna
from ich_nb.dicom import read_series
make_phantom({str(tmp_path)!r}, n_studies=2, layout='rsna', site='A', matrix=32, workers=1, progress=False)
slices, _ = index_rsna({str(tmp_path)!r}, workers=1, progress=False)
read_series(slices[slices.series_id == slices.series_id[0]].path.tolist())
assert (c.settings.reading_validation_mode, c.settings.writing_validation_mode) == before, before
print('unchanged')
'''
    r = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True, text=True)
    assert r.returncode == 0 and 'unchanged' in r.stdout, r.stderr[-2000:]
