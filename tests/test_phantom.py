"The phantom measured against its specification (DESIGN.md): HU per tissue, where and what shape each bleed is, readers, prevalence, bytes."
import filecmp
import functools
import numpy as np
import pandas as pd
import pytest
from skimage.measure import label, regionprops

from ich_nb.dicom import read_series
from ich_nb.labels import CLASSES, SUBTYPES, cq500_majority, read_cq500_reads, read_rsna_labels
from ich_nb.phantom import (T, TISSUES, anatomy, bleed_mask, make_bleed, make_head, make_phantom, make_pose,
                            make_scanner, make_study, render_series, simulate_readers)

U = np.arange(-100, 100, 0.7)
X, Y = [a.ravel() for a in np.meshgrid(U, U)]


def plane(head, z):
    return anatomy(head, X, Y, np.full_like(X, z))


@pytest.fixture(scope='module')
def scan():
    "A rendered 5 mm series of a head with an IPH, and the tissue of each pixel's centre."
    rng = np.random.default_rng(11)
    head = make_head(rng) | dict(choroid=True, pineal=True, falx_calc=False)   # no midline calcification: the CSF around it stays CSF
    b = make_bleed(rng, 'intraparenchymal')
    b['centre'], b['radius'] = np.array([20., -5, 8]), 12.
    sc = make_scanner(rng, 'A') | dict(tilt=0., fov=230., offset=0., beam=0., streaks=0.)   # calibrated: tissue HU as specified
    pose = dict(R=np.eye(3), t=np.zeros(3), start=-78.)
    r = render_series(head, [b], sc, pose, 2., 256, rng)        # 2 mm: one sub-slice, no partial volume in z
    u = (np.arange(256) - 127.5) * 230 / 256
    xx, yy = [a.ravel() for a in np.meshgrid(u, u)]
    z = r['ipp'][:, 2]                                      # axial and untilted: each plane's z is its IPP's z
    def tissue_at(zk): return anatomy(head, xx, yy, np.full_like(xx, zk))['tissue'].reshape(256, 256)
    tissue = np.stack([tissue_at(zk) for zk in z])
    holder = np.hypot(xx / (head['A'] + 12), yy / (head['B'] + 10)).reshape(256, 256) > 0.95
    tissue[:, holder] = -1                                   # not anatomy: the head holder and beyond
    return r, tissue


BONE = [T[k] for k in ('outer_table', 'diploe', 'inner_table', 'skull_base', 'petrous')]


def interior(mask, n=2):
    "Pixels of `mask` whose n-neighbourhood (in-plane) is all in the mask: away from partial volume."
    from scipy.ndimage import binary_erosion
    return np.stack([binary_erosion(m, iterations=n) for m in mask])


@pytest.mark.parametrize('tissue, lo, hi', [('air', -1010, -990), ('scalp', 30, 50), ('grey', 33, 47), ('white', 18, 32),
                                            ('csf', 0, 15)])
def test_mean_hu_per_tissue_on_the_scan(scan, tissue, lo, hi):
    r, t = scan
    m = interior(t == T[tissue], 1 if tissue == 'csf' else 2) & ~np.isnan(r['hu'])
    if tissue != 'air': m &= interior(~np.isin(t, BONE), 4)     # 4 px from bone: its blur would raise a thin layer of CSF
    assert m.sum() > 20
    assert lo <= r['hu'][m].mean() <= hi, r['hu'][m].mean()


def test_calcifications_are_haemorrhage_mimics(scan):
    "Choroid plexus and pineal calcifications: their brightest pixels at 100-300 HU, like blood to a careless eye."
    from scipy.ndimage import label as components, maximum
    r, t = scan
    lab, n = components(t == T['calcification'])
    peaks = maximum(r['hu'], lab, range(1, n + 1))
    assert n >= 3 and ((100 <= np.array(peaks)) & (np.array(peaks) <= 330)).all(), peaks


def test_skull_and_blood_hu(scan):
    r, t = scan
    skull = interior(np.isin(t, [T['outer_table'], T['diploe'], T['inner_table']]), 1)
    assert 700 <= np.nanmean(r['hu'][skull]) <= 2000
    blood = interior(r['masks'][:, SUBTYPES.index('intraparenchymal')], 2)
    assert blood.sum() > 50 and 50 <= r['hu'][blood].mean() <= 90


def test_the_series_starts_at_the_neck(scan):
    "The lowest slices are below the skull, as a real head CT's: muscles of about 50 HU parted by fat, and the cord in its canal."
    r, t = scan
    head = ~np.isin(t[0], [-1, T['air']])
    muscle, fat = interior(t[:1] == T['muscle'], 2)[0], interior(t[:1] == T['fat'], 1)[0]
    assert muscle.sum() > 0.15 * head.sum() and fat.sum() > 0.03 * head.sum(), (muscle.sum(), fat.sum(), head.sum())
    assert 42 <= r['hu'][0][muscle].mean() <= 62 and r['hu'][0][fat].mean() < -30
    below = r['ipp'][:, 2] < -68                                               # below the foramen magnum: no brain, the cord in every slice
    assert below.sum() >= 3 and not np.isin(t[below], [T['grey'], T['white']]).any()
    assert all((tk == T['cord']).any() for tk in t[below])


def test_the_face_lies_in_front_of_the_skull_base():
    "Below the forehead the head reaches forward of the brain: the nose in front, air in the nasal cavity and maxillary sinuses, the globes inside the lids."
    for seed in range(5):
        head = make_head(np.random.default_rng(seed))
        ahead = np.arange(-130., -60, 0.5)                                                  # a line forward from the face
        nose, cheek = [anatomy(head, np.full_like(ahead, x), ahead, np.full_like(ahead, -55.))['tissue'] for x in (0., 30.)]
        assert ahead[nose != T['air']].min() < -105 < ahead[cheek != T['air']].min()          # the nose, beyond the cheeks
        a = plane(head, -55.)['tissue']
        for sx in (-1, 1):
            sinus = (a == T['sinus']) & (np.abs(X - sx * 28) < 8) & (np.abs(Y + 64) < 8)        # the maxillary sinus: air
            assert sinus.sum() > 50
        assert ((a == T['sinus']) & (np.abs(X) < 8) & (Y < -50) & (Y > -85)).sum() > 50   # the nasal cavity
        assert ((a == T['skull_base']) & (np.abs(X) < 1) & (Y < -50) & (Y > -84)).any()    # its septum
        g = plane(head, -32.)['tissue']
        for sx in (-1, 1):
            globe = (g == T['globe']) & (np.sign(X) == sx)
            assert globe.sum() > 100
            front = Y[(g != T['air']) & (np.abs(X - sx * 31) < 2)].min()
            assert front < Y[globe].min() - 1.5                                                    # lids over the globe
        assert ((g == T['muscle']) & (np.abs(Y + 60) < 14) & (np.abs(X) > 12) & (np.abs(X) < 45)).sum() > 20   # the eye muscles


def test_tentorium_is_a_v_pointing_back():
    "On an axial plane through it the tentorium is two limbs on either side that meet behind, on the straight sinus."
    a = plane(make_head(np.random.default_rng(3)), -6.)
    tent = (a['tissue'] == T['falx']) & (Y > 22) & (np.abs(X) > 3)
    assert (X[tent] > 0).sum() > 20 and (X[tent] < 0).sum() > 20
    assert np.corrcoef(Y[tent], np.abs(X[tent]))[0, 1] < -0.9              # the further back, the nearer the midline
    assert ((a['tissue'] == T['venous']) & (np.abs(X) < 2) & (Y > 40)).any()   # the straight sinus at the apex


def test_veins_are_dense_like_blood():
    "The vein of Galen and the internal cerebral veins behind the third ventricle, and cortical veins in the sulci, at the sinuses' HU."
    for seed in range(5):
        head = make_head(np.random.default_rng(seed))
        deep = (plane(head, 9.)['tissue'] == T['venous']) & (np.abs(X) < 4) & (Y > -8) & (Y < 24)
        assert (X[deep] > 0).sum() > 10 and (X[deep] < 0).sum() > 10 and np.ptp(Y[deep]) > 15     # paired, running back
        a = plane(head, 35.)
        cortical = (a['tissue'] == T['venous']) & (np.abs(X) > 10)                 # away from the superior sagittal sinus
        assert cortical.sum() > 20 and np.median(a['depth'][cortical]) < head['csf'] + 6
        assert 40 <= head['hu']['venous'] <= 70 and 45 <= head['hu']['falx'] <= 70


def bleeds_in(subtype, n=25):
    "n random heads with one bleed of `subtype`, each on the axial plane through the bleed."
    for seed in range(n):
        rng = np.random.default_rng(seed)
        head, b = make_head(rng), make_bleed(rng, subtype)
        z = b['z'] if 'z' in b else b['centre'][2] if 'centre' in b else 14.
        a = plane(head, z)
        yield b, a, bleed_mask(b, X, Y, np.full_like(X, z), a)


def test_edh_and_sdh_touch_the_inner_table():
    for st in ('epidural', 'subdural'):
        for b, a, (m, _) in bleeds_in(st):
            assert m.any() and a['cavity'][m].all() and a['depth'][m].min() < 0.7, st


def test_sdh_does_not_cross_the_falx():
    for b, a, (m, _) in bleeds_in('subdural'):
        assert (np.sign(X[m]) == b['side']).all()


def test_ivh_inside_a_ventricle_iph_in_parenchyma_sah_in_csf_spaces():
    for b, a, (m, _) in bleeds_in('intraventricular'):
        assert a['ventricle'][m].all()
    for b, a, (m, rim) in bleeds_in('intraparenchymal'):
        assert m.any() and a['cavity'][m].all() and not (a['ventricle'] | a['subarachnoid'])[m].any()
        assert not (rim & m).any() and rim.any()
    for b, a, (m, _) in bleeds_in('subarachnoid'):
        assert a['subarachnoid'][m].all()


def shape(m, a):
    "Solidity (area / convex hull area) of the largest region, and its thickness over its length along the skull."
    r = max(regionprops(label(m.reshape(len(U), len(U)))), key=lambda r: r.area)
    th = np.unwrap(np.sort(np.arctan2(Y[m], X[m])))
    return r.solidity, a['depth'][m].max() / (65 * (th.max() - th.min()))


def test_edh_is_a_lens_and_sdh_a_crescent():
    edh = np.array([shape(m, a) for _, a, (m, _) in bleeds_in('epidural') if m.sum() > 30])
    sdh = np.array([shape(m, a) for _, a, (m, _) in bleeds_in('subdural') if m.sum() > 30])
    assert len(edh) > 15 and len(sdh) > 15
    # a lens is convex and thick for its length; a crescent is concave and thin
    assert np.median(edh[:, 0]) > 0.9 and np.median(sdh[:, 0]) < 0.6
    assert edh[:, 0].min() > np.median(sdh[:, 0])
    assert np.median(edh[:, 1]) > 0.15 and np.median(sdh[:, 1]) < 0.1


def test_reader_error_rate_and_disagreement():
    "Each reader's ICH call is wrong at the stated rate, subtypes follow the ICH call, and the majority is rarely wrong."
    rng = np.random.default_rng(0)
    p, n = 0.08, 3000
    truths = [dict(zip(SUBTYPES, rng.integers(0, 2, 5) * (rng.random() < 0.5))) for _ in range(n)]
    reads = pd.DataFrame([simulate_readers(rng, t, [], 0., p) for t in truths])
    codes = {'epidural': 'EDH', 'intraparenchymal': 'IPH', 'intraventricular': 'IVH', 'subarachnoid': 'SAH', 'subdural': 'SDH'}
    calls = np.stack([[reads[f'R{r}:{codes[c]}'] for c in SUBTYPES] for r in (1, 2, 3)])     # reader, class, study
    truth = np.array([[t[c] for c in SUBTYPES] for t in truths]).T
    ich, any_truth = np.stack([reads[f'R{r}:ICH'] for r in (1, 2, 3)]), truth.max(0)
    assert abs((ich != any_truth).mean() - p) < 0.01
    assert (ich == calls.max(1)).all()                                                  # blood called if and only if a subtype is named
    majority = (ich.sum(0) >= 2) != any_truth
    assert abs(majority.mean() - (3 * p**2 * (1 - p) + p**3)) < 0.01
    missed = (calls == 0) & (truth == 1)
    assert p <= missed.sum() / (3 * truth.sum()) <= 2 * p                                    # a present subtype missed: ICH missed, or named not
    assert ((calls == 1) & (truth == 0))[:, :, any_truth == 1].mean() == 0              # in a study with blood no absent subtype is named


def test_prevalence_and_edh_rarity():
    studies = [make_study(0, 'A', i, i, prevalence=0.4) for i in range(600)]
    pos = np.mean([len(s['bleeds']) > 0 for s in studies])
    edh = np.mean([any(b['subtype'] == 'epidural' for b in s['bleeds']) for s in studies])
    assert abs(pos - 0.4) < 0.05 and 0.005 < edh < 0.05
    assert np.mean([len(s['bleeds']) > 0 for s in (make_study(0, 'A', i, i, prevalence=0.1) for i in range(300))]) < 0.16


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp('phantom')
    studies = make_phantom(root / 'rsna', n_studies=24, layout='rsna', site='A', matrix=64, workers=2, progress=False)
    return root, studies


def test_rendered_bleeds_are_visible_and_prevalence(smoke):
    root, studies = smoke
    planned = studies.n_bleeds > 0
    assert (studies['any'][planned] == 1).mean() >= 0.85      # nearly every planned bleed shows on some slice
    assert (studies['any'][~planned] == 0).all()
    assert 0.2 <= studies['any'].mean() <= 0.65
    assert studies.patient_id.nunique() < len(studies)          # some patients have two studies


def test_rsna_layout_reads_back(smoke):
    root, studies = smoke
    with pytest.warns(UserWarning, match='duplicated rows'):
        labels = read_rsna_labels(root / 'rsna' / 'stage_2_train.csv')
    files = sorted((root / 'rsna' / 'stage_2_train').glob('ID_*.dcm'))
    assert len(labels) == len(files) and set(labels.index) == {f.stem for f in files}
    assert (labels['any'] == labels[SUBTYPES].max(axis=1)).all()


def test_same_seed_same_bytes(smoke, tmp_path):
    root, _ = smoke
    make_phantom(tmp_path / 'again', n_studies=24, layout='rsna', site='A', matrix=64, workers=1, progress=False)
    files = sorted(p.relative_to(root / 'rsna') for p in (root / 'rsna').rglob('*') if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / 'again') for p in (tmp_path / 'again').rglob('*') if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(root / 'rsna', tmp_path / 'again', files, shallow=False)
    assert mismatch == [] and errors == []
    make_phantom(tmp_path / 'other', n_studies=2, layout='rsna', site='A', matrix=64, seed=1, workers=1, progress=False)
    assert (tmp_path / 'other' / 'stage_2_train.csv').read_bytes() != (root / 'rsna' / 'stage_2_train.csv').read_bytes()


def test_cq500_layout(tmp_path):
    studies = make_phantom(tmp_path, n_studies=4, layout='cq500', site='B', matrix=64, workers=2, progress=False, reader_error=0.0)
    maj = cq500_majority(read_cq500_reads(tmp_path / 'reads.csv'))
    assert (maj[list(CLASSES)].to_numpy() == studies.set_index('name').loc[maj.index, list(CLASSES)].to_numpy()).all()
    for name in studies.name:
        n = name.split('-')[-1]
        series = sorted((tmp_path / f'CQ500CT{n} CQ500CT{n}' / 'Unknown Study').iterdir())
        assert {s.name for s in series} >= {'CT Plain', 'CT PLAIN THIN'}
        thick, thin = read_series(series[[s.name for s in series].index('CT Plain')])[1], \
            read_series(series[[s.name for s in series].index('CT PLAIN THIN')])[1]
        assert len(thin) > 1.7 * len(thick)


def test_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'):
        make_phantom(tmp_path, n_studies=1, matrix=64, workers=1, progress=False)


@functools.cache
def real_series(folder):
    "HU and pixel spacing (mm) of a real series of the team's samples (read once for the tests that need it)."
    from ich_nb.dicom import read_dicom
    vol, files = read_series(folder)
    return vol, float(read_dicom(files.path[0], pixels=False).PixelSpacing[0])


@functools.cache
def phantom_series(site, thickness, spacing):
    "HU and pixel spacing (mm) of study 7 of `site`, bleed-free (rendered once for the tests that need it)."
    st = make_study(7, site, 7, 7, prevalence=0)
    r = render_series(st['head'], [], st['scanner'], st['pose'], thickness, 256, np.random.default_rng(7), spacing=spacing)
    return r['hu'], r['spacing']


@pytest.mark.parametrize('site, thickness, spacing, real', [('A', 5., None, 'rsna_series_ID_fff502d5'),
                                                           ('B', 0.625, 1.25, 'cq500_CT-0_series_0.625mm_even_instances')])
def test_brain_and_skull_match_the_real_series(samples, site, thickness, spacing, real):
    "Each site's brain HU within 6 HU (Wasserstein) of its real counterpart, its noise within 35 %; its slices' maximum (the skull) within 120 HU, the brain's full-range grey level as steady (03_phantom)."
    from scipy.stats import wasserstein_distance
    from ich_nb.phantom import brain_stats, full_range_stats
    vol, ps = real_series(samples / real)
    ref = brain_stats(vol, ps)
    hu, ps = phantom_series(site, thickness, spacing)
    ph = brain_stats(hu, ps)
    assert wasserstein_distance(ph['values'], ref['values']) <= 6, wasserstein_distance(ph['values'], ref['values'])
    assert 0.65 <= ph['noise'] / ref['noise'] <= 1.35, (ph['noise'], ref['noise'])
    fr, fr_ref = full_range_stats(hu), full_range_stats(vol)
    assert abs(np.median(fr['top']) - np.median(fr_ref['top'])) <= 120, (np.median(fr['top']), np.median(fr_ref['top']))
    assert fr['spread'] <= 2, fr['spread']                                       # grey levels, slice to slice; the real series: 0.8 and 1.6


def test_the_face_is_shaped_as_the_real_one(samples):
    "On the slices with little brain, a site-B thin series' head is within 15 mm of CQ500-CT-0's length and 25 mm of its width (03_phantom)."
    from ich_nb.phantom import face_shape
    ref = face_shape(*real_series(samples / 'cq500_CT-0_series_0.625mm_even_instances'))
    ph = face_shape(*phantom_series('B', 0.625, 1.25))
    assert ph['slices'] >= 5 and abs(ph['length_mm'] - ref['length_mm']) <= 15 and abs(ph['width_mm'] - ref['width_mm']) <= 25, (ph, ref)
