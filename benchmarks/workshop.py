"""How the workshop profile was chosen: CNNwdw trained with the paper's constant rate against a one-cycle
schedule, Grad-CAM's pointing game by backbone stage, what the site shift is made of, real CT.

    .venv/bin/python benchmarks/workshop.py schedule --run-dir RUN [--epochs 4]
    .venv/bin/python benchmarks/workshop.py sampling --run-dir RUN [--epochs 4] [--pipeline wdw]
    .venv/bin/python benchmarks/workshop.py brain_window --run-dir RUN [--epochs 4]
    .venv/bin/python benchmarks/workshop.py curve --run-dir RUN [--pipeline wdw] --epochs 16 [--every 2] [--lr 3e-3]
    .venv/bin/python benchmarks/workshop.py keep --run-dir RUN
    .venv/bin/python benchmarks/workshop.py learnt --run-dir RUN
    .venv/bin/python benchmarks/workshop.py gradcam --run-dir RUN [--tolerance 2]
    .venv/bin/python benchmarks/workshop.py subtypes --run-dir RUN
    .venv/bin/python benchmarks/workshop.py shift --run-dir RUN
    .venv/bin/python benchmarks/workshop.py real --run-dir RUN [--samples ../shared/real_samples]
    .venv/bin/python benchmarks/workshop.py series --run-dir RUN [--studies 24]

`schedule` needs a workshop run folder past 01_data (`ich-nb reproduce --profile workshop --until 01_data`);
it trains CNNwdw twice on that run's slices (nothing of the run is changed) and scores its validation
studies and the test studies, each study scored by its highest slice (`data.study_scores`, as the run).
`sampling` trains one pipeline's CNN on such a run's slices twice, each epoch every slice (the paper) or
every slice with blood and as many without (`cnn.sampling: balanced`), and scores it the same way.
`brain_window` asks why CNNslc learns slowly: CNNwdw against a CNN that sees the brain window alone (the
slice in all three channels, no neighbours), trained as the run trains its CNNs.
`curve` asks whether a CNN learns with more epochs than the run gave it: a finished run's checkpoints of one
pipeline scored every `--every` epochs, then training goes on from the last of them (in a scratch folder) to
`--epochs`, scored the same way; with `--lr` other than the run's it trains from the start at that rate.
`keep` scores a finished run's CNNs at the epoch of lowest validation loss and at the last.
`learnt` asks of a finished run whether each CNN learnt the blood or only where in the head bleeds lie:
on the validation slices, its AUC between slices at the same level against the middle of the head's
(`data.blood_or_level`, as the run's 02_cnns shows it).
`gradcam` needs a finished workshop run: its CNNwdw's heatmaps from each stage, on up to 60 test slices
per subtype (each from its subtype's logit; at the run's stage also from the logit of 'any'), against a
centred blob and random maps (`gradcam.localisation`; a hit is a peak within `--tolerance` px of the
bleed, 2 as the run; the pointing game's authors, Zhang et al. 2016, allowed 15 px on
PASCAL VOC and COCO images of about 500 px: 3 % of the width, 4 px at 128 px).
`subtypes` asks whether a finished run's CNNwdw tells the subtypes apart, which its subtype heatmaps need:
for each subtype, the training slices and the studies of each split that hold it, and CNNwdw's study AUC
for that subtype in each split (the run's own predictions, seconds).
`shift` asks how much of the site shift is the scanners' calibration: a finished run's CNNwdw scores
the test site's series with their HU moved down (towards the training site's calibration) and the
validation series moved up, each study by its highest slice.
`real` scores real head CT with a finished run's three CNNs, slice by slice: the team's RSNA series
(ID_fff502d5, a right basal-ganglia haematoma with intraventricular extension; labelled here by
looking, in scan order from the skull base: slices 15-22 show blood, 0-11 and 24-33 do not, the
others are left out as uncertain), CQ500-CT-0's thin series (negative by the readers' majority; its
slices with little brain, `phantom.little_brain`: in its lower half, where `phantom.cranial_cavity`
finds under a quarter of the head: the face and neck and the skull base, apart) and
pydicom-data's CQ500-CT-310 slice (chronic subdural, positive); beside them, the middle of the head alone
(`data.head_middle`), the score of a CNN that learnt only where bleeds lie.
`series` asks whether a finished run's CNNwdw calls thin slices bleeding on the phantom (as it did when it had
trained on 5 mm series only, before `data.thin_share`): it makes fresh site-B studies (seed 99) with every series, thin 0.625 mm and bone kernel beside
the plain 5 mm one, and scores each series, a series by its highest slice.
"""
import argparse, shutil, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from ich_nb.cache import _series_path, series_entry
from ich_nb.cnn import predict_slices
from ich_nb.data import blood_or_level, study_scores
from ich_nb.dicom import read_volume
from ich_nb.gradcam import baseline_maps, grad_cam, localisation
from ich_nb.labels import SUBTYPES, cq500_name
from ich_nb.launch import run_learner
from ich_nb.phantom import read_masks
from ich_nb.predict import _cnn_outputs, load_cnn, slice_inputs
from ich_nb.report import table_s3
from ich_nb.run import CNN_MODEL, Run, checkpoint_path, cnn_checkpoint, kept_checkpoint, read_losses
from ich_nb.train import fit_resumable, read_checkpoint
from ich_nb.windowing import PIPELINES


def study_auc(run:Run, learn, split:str, pipeline:str='wdw') -> tuple[float, int]:
    "AUC (any) of `learn` on `split`'s studies, a study scored by its highest slice."
    slices, studies = run.table('slices'), run.table('studies').set_index('study_id')
    s = slices[slices.split == split]
    probs, _ = predict_slices(learn, s, run.cache, pipeline, run.params['image']['cache_format'], crop=run.params['image']['size'])
    p = study_scores(s, probs).set_index('study_id').p_any
    return roc_auc_score(studies.loc[p.index, 'any'], p), len(p)


def train_and_score(run:Run, name:str, pipeline:str, epochs:int, lr:float, schedule:str='constant') -> dict:
    "Train `pipeline`'s CNN on the run's slices as the run would (in a scratch folder), score its studies, print one line."
    learn = run_learner(run, pipeline)
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        fit_resumable(learn, epochs, lr, Path(tempfile.mkdtemp()), pipeline, seed=run.params['seed'], schedule=schedule)
    secs = time.perf_counter() - t
    (va, nv), (te, nt) = study_auc(run, learn, 'valid', pipeline), study_auc(run, learn, 'test', pipeline)
    loss = [float(v[0]) for v in learn.recorder.values]
    print(f"  {name:48s} {len(learn.dls.train) * learn.dls.train.bs:5d} slices an epoch, {secs:5.0f} s; AUC (any) validation "
          f"{va:.3f} ({nv} studies), test {te:.3f} ({nt} studies); training loss {loss[0]:.3f} -> {loss[-1]:.3f}", flush=True)
    return dict(seconds=secs, valid_auc=va, test_auc=te)


def _header(run:Run, run_dir, epochs:int) -> None:
    c = run.params['cnn']
    print(f"{c['arch']}, {run.params['image']['size']} px, {epochs} epochs, lr {c['lr']:g}, sampling {c['sampling']}, on {run_dir}, "
          f"{torch.get_num_threads()} torch threads")


def schedule(run_dir, epochs:int):
    run = Run(run_dir)
    run.params['cnn']['sampling'] = 'all'
    _header(run, run_dir, epochs)
    base, cycle = (train_and_score(run, name, 'wdw', epochs, lr, sched) for name, sched, lr in
                   (('the paper: constant rate 1e-3 (baseline)', 'constant', 1e-3), ('one-cycle to 1e-2', 'one_cycle', 1e-2)))
    print(f"one-cycle against the baseline: test AUC {cycle['test_auc'] - base['test_auc']:+.3f}, time {cycle['seconds'] / base['seconds']:.2f}x")


def sampling(run_dir, epochs:int, pipeline:str='wdw'):
    run = Run(run_dir)
    rows = []
    for name, how in (('every slice, as the paper (baseline)', 'all'), ('balanced', 'balanced')):
        run.params['cnn']['sampling'] = how
        if not rows: _header(run, run_dir, epochs)
        rows.append(train_and_score(run, f'CNN{pipeline}, {name}', pipeline, epochs, run.params['cnn']['lr']))
    print(f"balanced against the baseline: test AUC {rows[1]['test_auc'] - rows[0]['test_auc']:+.3f}, "
          f"time {rows[1]['seconds'] / rows[0]['seconds']:.2f}x")


def brain_window(run_dir, epochs:int):
    "CNNwdw against a CNN that sees only the brain window (this slice in all three channels), both trained as the run trains its CNNs."
    PIPELINES['brain'] = [('brain', 0)] * 3                                # for this measurement only
    run = Run(run_dir)
    _header(run, run_dir, epochs)
    for name, pipeline in (('CNNwdw: brain, subdural, soft tissue (baseline)', 'wdw'), ('the brain window alone', 'brain')):
        train_and_score(run, name, pipeline, epochs, run.params['cnn']['lr'])


def curve(run_dir, epochs:int, pipeline:str, every:int=2, lr:float|None=None):
    "Validation and test AUC of `pipeline`'s CNN every `every` epochs: the run's checkpoints, then trained on (from the start at another `lr`)."
    run, name = Run(run_dir), cnn_checkpoint(pipeline)
    c, folder = run.params['cnn'], Path(tempfile.mkdtemp())
    if c['schedule'] != 'constant':
        raise SystemExit(f"{run_dir} trained with cnn.schedule {c['schedule']}: `curve` goes on at a constant rate only")
    ran = c['epochs'] if lr in (None, c['lr']) else 0                  # epochs of the run's own to score
    c['lr'] = lr or c['lr']
    for f in (run.path / 'models').glob(f'{name}_epoch*.pth') if ran else []: shutil.copy(f, folder)
    learn = run_learner(run, pipeline)
    print(f"{CNN_MODEL[pipeline]} of {run_dir} ({ran} of its epochs scored), lr {c['lr']:g}, sampling {c['sampling']}, "
          f"{torch.get_num_threads()} torch threads")
    for e in range(every, epochs + 1, every):
        t = time.perf_counter()
        if e <= ran: learn.model.load_state_dict(read_checkpoint(checkpoint_path(folder, name, e - 1), learn.dls.device)['model'])
        else:
            with learn.no_bar(), learn.no_logging():
                fit_resumable(learn, e, c['lr'], folder, name, seed=run.params['seed'], schedule=c['schedule'])
        secs = time.perf_counter() - t
        (va, _), (te, _) = study_auc(run, learn, 'valid', pipeline), study_auc(run, learn, 'test', pipeline)
        print(f"  epoch {e:2d} ({'the run' if e <= ran else f'trained, {secs:.0f} s'}): AUC (any) validation {va:.3f}, "
              f"test {te:.3f}", flush=True)


def keep(run_dir):
    "Each kept CNN epoch of a finished run, scored: which epoch the validation loss picks against the last."
    run = Run(run_dir)
    print(f"{run_dir}: {run.params['cnn']['epochs']} epochs, sampling {run.params['cnn']['sampling']}, {torch.get_num_threads()} torch threads")
    for pipeline in ('raw', 'wdw', 'slc'):
        learn, name = run_learner(run, pipeline), cnn_checkpoint(pipeline)
        losses = read_losses(run.path / 'models', name)
        for how in ('best_valid_loss', 'last'):
            path = kept_checkpoint(run.path / 'models', name, run.params['cnn']['epochs'], how)
            learn.model.load_state_dict(read_checkpoint(path, learn.dls.device)['model'])
            e = int(path.stem.rsplit('epoch', 1)[1])
            (va, _), (te, _) = study_auc(run, learn, 'valid', pipeline), study_auc(run, learn, 'test', pipeline)
            print(f"  {pipeline:3s} {how:15s} epoch {e + 1} of {len(losses)} (validation loss {losses[e]['valid']:.3f}): "
                  f"AUC (any) validation {va:.3f}, test {te:.3f}", flush=True)


def learnt(run_dir):
    "Each CNN's slice AUC on a run's validation slices, the middle of the head's alone, both at the same level, and the CNN's gain there."
    run = Run(run_dir)
    rows = []
    for name in CNN_MODEL.values():
        slices, probs, _ = run.preds(name)
        valid = (slices.split == 'valid').to_numpy()
        rows.append(dict(model=name, **blood_or_level(slices[valid], probs[valid])))
    print(f"{run_dir}, {valid.sum()} validation slices ({int(slices['any'][valid].sum())} with blood): slice AUC (any) of each CNN and "
          "of the middle of the head alone, both at the same level, and the 95 % interval of the CNN's gain there (studies resampled)")
    print(pd.DataFrame(rows).set_index('model').round(3).to_string())


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
        run_stage = run.params['eval']['gradcam_stage']
        cams_any = np.concatenate([grad_cam(model, x[i:i + 32], 'any', run_stage)[0] for i in range(0, len(x), 32)])
        row[f"{model.feature_info[run_stage]['module']}, 'any' logit"] = localisation(cams_any, m, tolerance)['pointing']
        row['centre'] = localisation(baseline_maps(cams.shape), m, tolerance)['pointing']
        row['random'] = localisation(baseline_maps(cams.shape, 'random'), m, tolerance)['pointing']
        rows.append(row)
    print(f"Grad-CAM pointing game of CNNwdw on {run_dir}'s test slices, by backbone stage ({size} px input, tolerance {tolerance} px):")
    print(pd.DataFrame(rows).set_index("subtype").round(3).to_string())


def subtypes(run_dir, model:str='CNNwdw'):
    "For each subtype: training slices and studies of each split holding it, and `model`'s study AUC for it in each split (Table S3's)."
    run = Run(run_dir)
    slices, preds = run.table('slices'), pd.read_csv(run.path / 'preds' / 'studies.csv')
    table = pd.DataFrame({'training_slices': slices[slices.split == 'train'][list(SUBTYPES)].sum().astype(int)})
    for split in ('train', 'valid', 'test'):
        s3 = table_s3(preds[preds.model == model], split).set_index('cls')
        table[f'{split}: studies'], table[f'{split}: AUC'] = s3.n_pos, s3.auc
    print(f"{run_dir}: {model}'s study AUC for each subtype, and the slices and studies that hold it, by split")
    print(table.rename_axis('subtype').round(3).to_string())


REAL_POSITIVE, REAL_NEGATIVE = list(range(15, 23)), list(range(0, 12)) + list(range(24, 34))   # RSNA ID_fff502d5, in scan order


def real(run_dir, samples):
    from pydicom.data import get_testdata_file
    from ich_nb.data import head_middle, read_study
    from ich_nb.phantom import little_brain
    run, samples = Run(run_dir), Path(samples)
    one = Path(tempfile.mkdtemp()) / 'CQ500-CT-310'; one.mkdir()
    shutil.copy(get_testdata_file('693_UNCR.dcm'), one)
    folders = {'rsna': samples / 'rsna_series_ID_fff502d5', 'cq0': samples / 'cq500_CT-0_series_0.625mm_even_instances', 'cq310': one}
    studies = {key: read_study(folder)[0] for key, folder in folders.items()}          # in scan order
    vols = {key: read_volume(sl.path, np.int16) for key, sl in studies.items()}
    vol = vols['cq0']
    low = little_brain(vol)                                                         # the face and neck, the skull base
    def line(name, got):
        pos, neg = got['rsna'][REAL_POSITIVE], got['rsna'][REAL_NEGATIVE]
        y, score = np.r_[np.ones(len(pos)), np.zeros(len(neg) + len(got['cq0'])), 1], np.r_[pos, neg, got['cq0'], got['cq310']]
        y, score = y[~np.isnan(score)], score[~np.isnan(score)]               # a single slice has no level
        every = roc_auc_score(y, score)
        print(f"  {name:15s} RSNA: mean {pos.mean():.3f} on the {len(pos)} slices with blood, {neg.mean():.3f} on the {len(neg)} without "
              f"(AUC {roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]):.3f}); CQ500-CT-0: mean "
              f"{got['cq0'].mean():.3f}, highest {got['cq0'].max():.3f} ({len(got['cq0'])} slices; {got['cq0'][low].mean():.3f} on the {low.sum()} "
              f"with little brain, {got['cq0'][~low].mean():.3f} on the others); CQ500-CT-310: {got['cq310'][0]:.3f}; "
              f"AUC over all {len(y)} slices {every:.3f}", flush=True)
    print(f"p(any) of {run_dir}'s CNNs on real head CT, per slice, and the middle of the head alone (`head_middle`):")
    line('middle of head', {key: head_middle(sl).to_numpy() for key, sl in studies.items()})
    for pipeline, name in (('raw', 'CNN'), ('wdw', 'CNNwdw'), ('slc', 'CNNslc')):
        net = load_cnn(run, pipeline)
        line(name, {key: _cnn_outputs(net, series_entry(vol, run.params['image']['cache_size']), pipeline,
                                      run.params, 'cpu')[0][:, 0] for key, vol in vols.items()})


def series(run_dir, n_studies:int=24):
    from ich_nb.data import read_study, series_kind
    from ich_nb.phantom import make_phantom
    run, root = Run(run_dir), Path(tempfile.mkdtemp()) / 'site_b'
    net, p = load_cnn(run, 'wdw'), run.params
    truth = make_phantom(root, n_studies, layout='cq500', site='B', seed=99, matrix=p['data']['matrix'], progress=False).set_index('name')
    rows = []
    for d in sorted(root.glob('CQ500*')):
        slices, _ = read_study(d, 'all')
        for _, g in slices.groupby('series_id'):
            entry = series_entry(read_volume(g.sort_values('slice_idx').path, np.int16), p['image']['cache_size'])
            q = _cnn_outputs(net, entry, 'wdw', p, 'cpu')[0][:, 0]
            rows.append(dict(series=f"{series_kind(*g[['description', 'contrast', 'kernel']].iloc[0])} {g.thickness.iloc[0]:g} mm",
                             any=truth.loc[cq500_name(d.name), 'any'], highest=q.max(), mean=q.mean()))
    df = pd.DataFrame(rows)
    print(f"CNNwdw of {run_dir} on {n_studies} fresh site-B phantom studies ({int(truth['any'].sum())} with blood), every series:")
    for kind, g in df.groupby('series'):
        print(f"  {kind:15s} {len(g):3d} series: mean p(any) over the slices of those without blood {g[g['any'] == 0]['mean'].mean():.3f}, "
              f"with blood {g[g['any'] == 1]['mean'].mean():.3f}; study AUC by the highest slice {roc_auc_score(g['any'], g.highest):.3f}")


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
    ap.add_argument('what', choices=['schedule', 'sampling', 'brain_window', 'curve', 'keep', 'learnt', 'gradcam', 'subtypes', 'shift', 'real', 'series'])
    ap.add_argument('--samples', default='../shared/real_samples', help="the team's real samples (for `real`)")
    ap.add_argument('--run-dir', required=True)
    ap.add_argument('--epochs', type=int, default=4, help='epochs to train (`curve`: to train up to, past the run\'s own)')
    ap.add_argument('--pipeline', default='wdw', choices=['raw', 'wdw', 'slc'], help='the CNN that `sampling` and `curve` train')
    ap.add_argument('--lr', type=float, help="`curve`: train from the start at this rate (default: the run's, from its checkpoints)")
    ap.add_argument('--studies', type=int, default=24, help='fresh site-B phantom studies to make (for `series`)')
    ap.add_argument('--every', type=int, default=2, help='score every this many epochs (for `curve`)')
    ap.add_argument('--tolerance', type=int, default=2, help='pointing game: how many pixels from the bleed a peak may fall (for `gradcam`)')
    a = ap.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    if a.what == 'schedule': schedule(a.run_dir, a.epochs)
    elif a.what == 'sampling': sampling(a.run_dir, a.epochs, a.pipeline)
    elif a.what == 'brain_window': brain_window(a.run_dir, a.epochs)
    elif a.what == 'curve': curve(a.run_dir, a.epochs, a.pipeline, a.every, a.lr)
    elif a.what == 'keep': keep(a.run_dir)
    elif a.what == 'learnt': learnt(a.run_dir)
    elif a.what == 'real': real(a.run_dir, a.samples)
    elif a.what == 'series': series(a.run_dir, a.studies)
    elif a.what == 'gradcam': gradcam(a.run_dir, tolerance=a.tolerance)
    elif a.what == 'subtypes': subtypes(a.run_dir)
    else: shift(a.run_dir)
