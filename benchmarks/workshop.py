"""How the workshop profile was chosen: CNNwdw trained with the paper's constant rate against a one-cycle
schedule, Grad-CAM's pointing game by backbone stage, what the site shift is made of, real CT.

    .venv/bin/python benchmarks/workshop.py schedule --run-dir RUN [--epochs 4]
    .venv/bin/python benchmarks/workshop.py gradcam --run-dir RUN [--tolerance 2]
    .venv/bin/python benchmarks/workshop.py shift --run-dir RUN
    .venv/bin/python benchmarks/workshop.py real --run-dir RUN [--samples ../shared/real_samples]

`schedule` needs a workshop run folder past 01_data (`ich-nb reproduce --profile workshop --until 01_data`);
it trains CNNwdw twice on that run's slices (nothing of the run is changed) and scores its validation
studies and the test studies, each study scored by its highest slice (`data.study_scores`, as the run).
`gradcam` needs a finished workshop run: its CNNwdw's heatmaps from each stage, on up to 60 test slices
per subtype, against a centred blob and random maps (`gradcam.localisation`; a hit is a peak within
`--tolerance` px of the bleed, 2 as the run; the pointing game's authors, Zhang et al. 2016, allowed 15 px on
PASCAL VOC and COCO images of about 500 px: 3 % of the width, 4 px at 128 px).
`shift` asks how much of the site shift is the scanners' calibration: a finished run's CNNwdw scores
the test site's series with their HU moved down (towards the training site's calibration) and the
validation series moved up, each study by its highest slice.
`real` scores real head CT with a finished run's three CNNs, slice by slice: the team's RSNA series
(ID_fff502d5, a right basal-ganglia haematoma with intraventricular extension; labelled here by
looking, in scan order from the skull base: slices 15-22 show blood, 0-11 and 24-33 do not, the
others are left out as uncertain), CQ500-CT-0's thin series (negative by the readers' majority) and
pydicom-data's CQ500-CT-310 slice (chronic subdural, positive).
"""
import argparse, shutil, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from ich_nb.cnn import predict_slices
from ich_nb.data import study_scores
from ich_nb.gradcam import baseline_maps, grad_cam, localisation
from ich_nb.labels import SUBTYPES
from ich_nb.launch import run_learner
from ich_nb.phantom import read_masks
from ich_nb.cache import _series_path
from ich_nb.predict import _cnn_outputs, load_cnn, slice_inputs
from ich_nb.run import Run
from ich_nb.train import fit_resumable


def study_auc(run:Run, learn, split:str) -> tuple[float, int]:
    "AUC (any) of `learn` on `split`'s studies, a study scored by its highest slice."
    slices, studies = run.table('slices'), run.table('studies').set_index('study_id')
    s = slices[slices.split == split]
    probs, _ = predict_slices(learn, s, run.cache, 'wdw', run.params['image']['cache_format'], crop=run.params['image']['size'])
    p = study_scores(s, probs).set_index('study_id').p_any
    return roc_auc_score(studies.loc[p.index, 'any'], p), len(p)


def schedule(run_dir, epochs:int):
    run = Run(run_dir)
    print(f"CNNwdw ({run.params['cnn']['arch']}, {run.params['image']['size']} px, {epochs} epochs) on {run_dir}, "
          f"{torch.get_num_threads()} torch threads")
    rows = []
    for name, sched, lr in (('the paper: constant rate (baseline)', 'constant', 1e-3), ('one-cycle', 'one_cycle', 1e-2)):
        learn = run_learner(run, 'wdw')
        t = time.perf_counter()
        with learn.no_bar(), learn.no_logging():
            fit_resumable(learn, epochs, lr, Path(tempfile.mkdtemp()), 'wdw', seed=run.params['seed'], schedule=sched)
        secs = time.perf_counter() - t
        (va, nv), (te, nt) = study_auc(run, learn, 'valid'), study_auc(run, learn, 'test')
        rows.append(dict(training=name, lr=lr, seconds=round(secs), valid_auc=round(va, 3), test_auc=round(te, 3)))
        print(f"  {name:38s} lr {lr:g}: {secs:5.0f} s; AUC (any) validation {va:.3f} ({nv} studies), test {te:.3f} ({nt} studies)", flush=True)
    d = pd.DataFrame(rows)
    print(f"one-cycle against the baseline: test AUC {d.test_auc[1] - d.test_auc[0]:+.3f}, time {d.seconds[1] / d.seconds[0]:.2f}x")


def gradcam(run_dir, per_subtype:int=60, tolerance:int=2):
    run = Run(run_dir)
    model, size = load_cnn(run, 'wdw', fold=False), run.params['image']['size']
    slices = run.table('slices')
    test = slices[slices.split == 'test']
    masks = {}
    for f in (run.data('test') / 'masks').glob('*.npz'):
        sops, m = read_masks(f); masks.update(zip(sops, m))
    test = test[test.sop_uid.isin(masks)]
    stages = range(-1, -len(model.feature_info), -1)
    rows = []
    for j, st in enumerate(SUBTYPES):
        r = test[[masks[s][j].any() for s in test.sop_uid]]
        if not len(r): continue
        r = r.sample(min(len(r), per_subtype), random_state=0)
        x, _, m = slice_inputs(run, r, 'wdw', masks=[masks[s][j] for s in r.sop_uid])
        row = dict(subtype=st, slices=len(r))
        for stage in stages:
            cams = np.concatenate([grad_cam(model, x[i:i + 32], st, stage)[0] for i in range(0, len(x), 32)])
            grid = size // model.feature_info[stage]['reduction']
            row[f"{model.feature_info[stage]['module']} ({grid}x{grid})"] = localisation(cams, m, tolerance)['pointing']
        row['centre'] = localisation(baseline_maps(cams.shape), m, tolerance)['pointing']
        row['random'] = localisation(baseline_maps(cams.shape, 'random'), m, tolerance)['pointing']
        rows.append(row)
    print(f"Grad-CAM pointing game of CNNwdw on {run_dir}'s test slices, by backbone stage ({size} px input, tolerance {tolerance} px):")
    print(pd.DataFrame(rows).set_index("subtype").round(3).to_string())


REAL_POSITIVE, REAL_NEGATIVE = list(range(15, 23)), list(range(0, 12)) + list(range(24, 34))   # RSNA ID_fff502d5, in scan order


def real(run_dir, samples):
    from pydicom.data import get_testdata_file
    from ich_nb.cache import series_entry
    from ich_nb.data import read_study
    from ich_nb.dicom import read_volume
    run, samples = Run(run_dir), Path(samples)
    one = Path(tempfile.mkdtemp()) / 'CQ500-CT-310'; one.mkdir()
    shutil.copy(get_testdata_file('693_UNCR.dcm'), one)
    folders = {'rsna': samples / 'rsna_series_ID_fff502d5', 'cq0': samples / 'cq500_CT-0_series_0.625mm_even_instances', 'cq310': one}
    print(f"p(any) of {run_dir}'s CNNs on real head CT, per slice:")
    for pipeline, name in (('raw', 'CNN'), ('wdw', 'CNNwdw'), ('slc', 'CNNslc')):
        net, got = load_cnn(run, pipeline), {}
        for key, folder in folders.items():
            slices, _ = read_study(folder)                                  # in scan order
            entry = series_entry(read_volume(slices.path, np.int16), run.params['image']['cache_size'])
            got[key] = _cnn_outputs(net, entry, pipeline, run.params, 'cpu')[0][:, 0]
        pos, neg = got['rsna'][REAL_POSITIVE], got['rsna'][REAL_NEGATIVE]
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg) + len(got['cq0'])), 1]
        every = roc_auc_score(y, np.r_[pos, neg, got['cq0'], got['cq310']])
        print(f"  {name:7s} RSNA: mean {pos.mean():.3f} on the {len(pos)} slices with blood, {neg.mean():.3f} on the {len(neg)} without "
              f"(AUC {roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]):.3f}); CQ500-CT-0: mean "
              f"{got['cq0'].mean():.3f}, highest {got['cq0'].max():.3f} ({len(got['cq0'])} slices); CQ500-CT-310: {got['cq310'][0]:.3f}; "
              f"AUC over all {len(y)} slices {every:.3f}", flush=True)


def shift(run_dir):
    run = Run(run_dir)
    net, p = load_cnn(run, 'wdw'), run.params
    slices, studies = run.table('slices'), run.table('studies').set_index('study_id')
    print(f"CNNwdw of {run_dir}, AUC (any) with every tissue pixel's HU moved by an offset (air and padding as they are):")
    for split, offsets in (('valid', (0, 5, 10)), ('test', (0, -5, -10))):
        s = slices[slices.split == split]
        for off in offsets:
            best = {}
            for series, g in s.groupby('series_id'):
                hu = np.load(_series_path(run.cache, series, 'npy'))
                probs, _ = _cnn_outputs(net, np.where(hu > -1000, hu + off, hu).astype(np.int16), 'wdw', p, 'cpu')
                best[g.study_id.iloc[0]] = max(best.get(g.study_id.iloc[0], 0.), float(probs[:, 0].max()))
            q = pd.Series(best)
            y = studies.loc[q.index, 'any']
            print(f"  {split:5s} {off:+3d} HU: AUC {roc_auc_score(y, q):.3f}; mean p(any) of negative studies {q[y == 0].mean():.3f}", flush=True)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('what', choices=['schedule', 'gradcam', 'shift', 'real'])
    ap.add_argument('--samples', default='../shared/real_samples', help="the team's real samples (for `real`)")
    ap.add_argument('--run-dir', required=True)
    ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--tolerance', type=int, default=2, help='pointing game: how many pixels from the bleed a peak may fall (for `gradcam`)')
    a = ap.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    if a.what == 'schedule': schedule(a.run_dir, a.epochs)
    elif a.what == 'real': real(a.run_dir, a.samples)
    elif a.what == 'gradcam': gradcam(a.run_dir, tolerance=a.tolerance)
    else: shift(a.run_dir)
