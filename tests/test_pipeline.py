"The paper's series end to end on the smoke profile with bad files mixed in, killed in the middle of training and resumed to the same results as without the kill; changed results found and made again; a step run again starting from nothing; and bad parameters."
import json, os, re, shutil, signal, subprocess, sys, time, warnings
from pathlib import Path
import nbformat
import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless

from ich_nb.data import index_cq500
from ich_nb.dicom import read_dicom
from ich_nb.labels import CLASSES, cq500_name
from ich_nb.phantom import make_datasets, make_phantom
from ich_nb import pipeline
from ich_nb.pipeline import STEPS, changed_results, run_series
from ich_nb.launch import fit_cnn, score_slices
from ich_nb.predict import predict_studies
from ich_nb.run import MODELS, ConfigError, Run, load_profile, start_run

ICH_NB = Path(sys.executable).parent / 'ich-nb'


def test_a_bad_parameter_stops_before_any_work(tmp_path):
    r = subprocess.run([ICH_NB, 'reproduce', '--run-dir', tmp_path / 'run', '-p', 'cnn.epochs', 'three'], capture_output=True, text=True)
    assert r.returncode == 2 and "cnn.epochs is 'three' (str); it must be int" in r.stderr
    assert not (tmp_path / 'run').exists()
    r = subprocess.run([ICH_NB, 'reproduce', '--run-dir', tmp_path / 'run', '-p', 'cnn.epoch', '3'], capture_output=True, text=True)
    assert r.returncode == 2 and 'unknown parameter cnn.epoch' in r.stderr
    r = subprocess.run([ICH_NB, 'reproduce', '--profile', 'paper', '--run-dir', tmp_path / 'run'], capture_output=True, text=True)
    assert r.returncode == 2 and 'data.data_dir is needed' in r.stderr


def fake_series(folder:Path) -> Path:
    "Stand-ins for the paper's first three notebooks: each logs what `models/` holds when it starts, then writes one file there."
    code = ("import json\nfrom pathlib import Path\nrd = Path(run_dir)\nlog = rd / 'seen.jsonl'\n"
            "ran = sum(json.loads(l)['step'] == STEP for l in log.read_text().splitlines()) if log.exists() else 0\n"
            "with open(log, 'a') as f: f.write(json.dumps(dict(step=STEP, found=sorted(p.name for p in (rd / 'models').glob('*')))) + '\\n')\n"
            "(rd / 'models').mkdir(exist_ok=True)\n"
            "if (rd / 'fail').exists(): (rd / 'models' / f'{STEP}_killed.txt').write_text('half'); raise RuntimeError('stopped')\n"
            "(rd / 'models' / f'{STEP}_{ran}.txt').write_text(str(ran))")
    folder.mkdir()
    for step in STEPS[:3]:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("run_dir = ''", metadata={'tags': ['parameters']}),
                                             nbformat.v4.new_code_cell(f'STEP = {step[:2]!r}\n' + code)])
        nb.metadata['kernelspec'] = {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'}
        nbformat.write(nb, folder / f'{step}.ipynb')
    return folder


def test_a_step_run_again_starts_from_nothing_and_takes_the_steps_after_it_with_it(tmp_path, monkeypatch):
    series = fake_series(tmp_path / 'series')
    monkeypatch.setattr(pipeline, 'series_dir', lambda: series)
    monkeypatch.setattr(pipeline, 'render_executed', lambda rd: None)
    rd = start_run(tmp_path / 'run', load_profile('smoke'))
    seen = lambda: [(d['step'], d['found']) for d in map(json.loads, (rd / 'seen.jsonl').read_text().splitlines())]
    quiet = dict(progress=False, log=lambda m: None)
    run_series(rd, until='03_rnns', **quiet)
    assert seen() == [('01', []), ('02', ['01_0.txt']), ('03', ['01_0.txt', '02_0.txt'])]

    run_series(rd, start='02_cnns', until='02_cnns', **quiet)           # --from 02: its old results go first, and 03's, not 01's
    assert seen()[-1] == ('02', ['01_0.txt'])
    m = Run(rd).manifest()
    assert list(m) == ['01_data', '02_cnns'] and m['02_cnns']['status'] == 'done' and 'models/02_1.txt' in m['02_cnns']['produced']

    run_series(rd, until='03_rnns', **quiet)                            # 01 and 02 kept, 03 made again
    assert seen()[-1] == ('03', ['01_0.txt', '02_1.txt']) and [s for s, _ in seen()].count('01') == 1

    (rd / 'fail').touch()                                               # a try that stops half way ...
    with pytest.raises(RuntimeError, match='step 02_cnns failed'): run_series(rd, start='02_cnns', until='02_cnns', **quiet)
    assert Run(rd).manifest()['02_cnns']['status'] == 'failed' and not (rd / 'models' / '02_1.txt').exists()
    (rd / 'fail').unlink()
    run_series(rd, until='02_cnns', **quiet)                            # ... is resumed: what it left is kept
    assert seen()[-1] == ('02', ['01_0.txt', '02_killed.txt'])
    assert Run(rd).manifest()['02_cnns']['status'] == 'done' and 'models/02_killed.txt' in Run(rd).manifest()['02_cnns']['produced']


SMALLER = {'data.train_studies': '20', 'data.test_studies': '8', 'data.matrix': '64', 'image.size': '32', 'cnn.epochs': '2', 'rnn.epochs': '4'}
SHORTER = [a for k, v in SMALLER.items() for a in ('-p', k, v)]      # the smoke profile on less data, smaller images, fewer epochs: CI's time


def phantom_with_bad_files(run) -> dict:
    "The phantom of the smoke profile as SHORTER sets it, made ahead of the run, with bad files mixed in; what each should do."
    p = load_profile('smoke', SMALLER.items())
    make_datasets(run / 'data' / 'train', run / 'data' / 'test', p['data'], seed=p['seed'], progress=False)    # as 01_data makes it
    stray = run / 'data' / 'train' / 'stage_2_train' / 'ID_0000000000.dcm'
    stray.write_text('a note someone saved beside the images')
    cut = sorted((run / 'data' / 'train' / 'stage_2_train').glob('ID_*.dcm'))[20]
    cut.write_bytes(cut.read_bytes()[:-3000])                                 # a download cut short
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        _, studies = index_cq500(run / 'data' / 'test', progress=False, mode='one')       # a series of each study
    chosen = pd.read_csv(run / 'data' / 'test' / 'phantom_studies.csv').set_index('study_id').compressed.loc[studies.study_id]
    series = studies.series_id[chosen.to_numpy()].iloc[0]                     # a JPEG 2000 series the test set uses
    files = sorted((run / 'data' / 'test').rglob('*.dcm'))
    broken = next(f for f in files if read_dicom(f, pixels=False).SeriesInstanceUID == series)
    ds = read_dicom(broken)
    ds.PixelData = encapsulate([b'\0not a JPEG 2000 stream' * 40])            # its stream broken
    ds.save_as(broken, enforce_file_format=True)
    short = next(f for f in files if read_dicom(f, pixels=False).SeriesInstanceUID != series
                 and read_dicom(f, pixels=False).file_meta.TransferSyntaxUID.is_compressed)
    short.write_bytes(short.read_bytes()[:-500])                              # a compressed file cut short
    return dict(skipped_train={str(stray): 'not a DICOM file', str(cut): 'pixel data cut short'},
                skipped_test={str(short): 'it is cut short'},
                excluded=series, study=studies.study_id[studies.series_id == series].iloc[0])


def test_smoke_series_killed_in_training_resumes_and_finishes(tmp_path):
    run = tmp_path / 'smoke'
    bad = phantom_with_bad_files(run)
    proc = subprocess.Popen([ICH_NB, 'reproduce', '--run-dir', run, *SHORTER], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not (run / 'models' / 'cnn_slc_epoch0.pth').exists():
        time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read()
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()                    # killed while training CNNslc, CNN and CNNwdw trained and scored
    assert not (run / 'models' / 'cnn_slc_epoch1.pth').exists()         # in CNNslc's last epoch, not after it
    manifest = json.loads((run / 'manifest.json').read_text())
    assert manifest['01_data']['status'] == 'done' and manifest['02_cnns']['status'] == 'started'
    data_done = manifest['01_data']['finished']
    timings = pd.read_csv(run / 'tables' / 'inference_cnns.csv')
    cnn_time = timings.set_index('model').seconds_per_slice['CNN']
    shutil.rmtree(run / 'preds' / 'CNNwdw')                             # as if killed after CNNwdw's last epoch, before its scores:
    timings[timings.model != 'CNNwdw'].to_csv(run / 'tables' / 'inference_cnns.csv', index=False)   # so it is scored again
    kept = {p.name: p.stat().st_mtime_ns for p in (run / 'models').glob('*.pth')}

    r = subprocess.run([ICH_NB, 'reproduce', '--run-dir', run, *SHORTER], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert '[1/5] 01_data: done before, skipped' in r.stdout
    assert 'without encryption' not in r.stdout + r.stderr                 # the kernels' messages are encrypted
    manifest = json.loads((run / 'manifest.json').read_text())
    assert manifest['01_data']['finished'] == data_done                  # no step done twice
    assert all(manifest[s]['status'] == 'done' for s in ['01_data', '02_cnns', '03_rnns', '04_evaluate', '05_explain'])
    changed = [n for n, t in kept.items() if (run / 'models' / n).stat().st_mtime_ns != t]
    assert not changed, f"checkpoints of finished epochs were written again: {changed}; kept {sorted(kept)}"

    # the bad files were skipped and listed, the broken series' study left out, and the run went on
    for part in ('train', 'test'):
        skipped = pd.read_csv(run / 'tables' / f'skipped_{part}.csv').set_index('path').error
        assert sorted(skipped.index) == sorted(bad[f'skipped_{part}'])
        assert all(why in skipped[f] for f, why in bad[f'skipped_{part}'].items())
    excluded = pd.read_csv(run / 'tables' / 'excluded_series.csv')
    assert excluded.series_id.tolist() == [bad['excluded']] and 'pixel data cannot be decoded' in excluded.reason[0]
    assert bad['study'] not in set(pd.read_csv(run / 'tables' / 'studies.csv').study_id)

    # the run folder holds what the paper reports
    preds = pd.read_csv(run / 'preds' / 'studies.csv')
    assert sorted(preds.model.unique()) == sorted(MODELS)
    assert set(preds.split) == {'train', 'valid', 'test'} and preds.groupby('model').size().nunique() == 1
    metrics = json.loads((run / 'metrics.json').read_text())
    assert set(metrics['models']) == set(MODELS) and all(0 <= m['auc_any'] <= 1 for m in metrics['models'].values())
    for f in ['report.html', 'figures/fig1.html', 'figures/fig1.png', 'figures/fig2.html', 'figures/fig2.svg',
              'tables/table2.csv', 'tables/table_s3.csv', 'tables/table_s4.csv']:
        assert (run / f).stat().st_size > 500, f
    assert sorted(p.name for p in (run / 'executed').iterdir()) == [f'{s}.ipynb' for s in ['01_data', '02_cnns', '03_rnns', '04_evaluate', '05_explain']]
    for line in ['CNNens-RNN', 'Report:']: assert line in r.stdout
    timing = pd.read_csv(run / 'tables' / 'inference_cnns.csv').set_index('model').seconds_per_slice
    assert sorted(timing.index) == ['CNN', 'CNNslc', 'CNNwdw'] and (timing > 0).all()         # CNNwdw scored again
    assert timing['CNN'] == cnn_time                                      # CNN's time, from the killed try, kept
    assert all(len(v) == 64 for s in manifest.values() for k, v in s['produced'].items() if not k.startswith('models/'))

    # triage with the trained run: a phantom test study gives what the run itself computed for it
    names = set(pd.read_csv(run / 'tables' / 'studies.csv').name.dropna())        # the test studies the run scored
    scored = [d for d in sorted((run / 'data' / 'test').glob('CQ500CT*')) if cq500_name(d.name) in names]
    study = scored[0]
    dirs = [study, tmp_path / 'missing']
    samples = Path(__file__).resolve().parents[2] / 'shared' / 'real_samples' / 'rsna_series_ID_fff502d5'
    if samples.is_dir(): dirs.append(samples)                              # a real RSNA series (the model knows only phantoms)
    broken = tmp_path / 'broken' / study.name                              # the same study, every slice's pixels unreadable
    shutil.copytree(study, broken)
    for f in broken.rglob('*.dcm'):
        ds = pydicom.dcmread(f); ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = encapsulate([b'\0not j2k' * 40]); ds['PixelData'].VR = 'OB'; ds.save_as(f)
    dirs.append(broken)
    pair = tmp_path / 'pair'                                                  # two studies in one folder, and a stray file
    for one in scored[:2]: shutil.copytree(one, pair / one.name)
    (pair / 'notes.dcm').write_text('not an image')
    r = subprocess.run([ICH_NB, 'predict', *dirs, pair, '--run-dir', run, '--out', tmp_path / 'pred.csv', '--workers', '2'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, r.stderr[-2000:]                             # some studies could not be scored: said on stderr too
    assert r.stderr.count('NOT SCORED') == 2 and str(broken) in r.stderr
    said = [l for l in r.stdout.splitlines() if l.startswith(f'{pair}: skipped ')]
    assert len(said) == 1 and 'is not a DICOM file (1)' in said[0], r.stdout                # once for the folder
    out = pd.read_csv(tmp_path / 'pred.csv')
    assert len(out) == len(dirs) + 2 and out.error.fillna('').tolist()[1].endswith('not a folder of DICOM files')
    gone = out[out.study_dir == str(broken)].iloc[0]
    assert gone.error.startswith(str(broken)) and 'pixel data cannot be decoded' in gone.error and pd.isna(gone.p_any)
    two = out[out.study_dir == str(pair)]
    assert two.study_id.nunique() == 2 and two.p_any.notna().all() and two.skipped.str.contains('is not a DICOM file').all()
    assert abs(two.set_index('study_id').p_any[out.study_id[0]] - out.p_any[0]) < 1e-6   # the study scores the same beside another
    alone = predict_studies(run, [study], workers=1)                         # the CLI read and decoded with two worker processes; one process agrees
    assert np.allclose(alone[[f'p_{c}' for c in CLASSES]].to_numpy(float), out.loc[:0, [f'p_{c}' for c in CLASSES]].to_numpy(float))
    ours = out.iloc[0]
    theirs = preds[(preds.model == 'CNNens-RNN') & (preds.study_id == ours.study_id)].iloc[0]
    for c in CLASSES:
        assert abs(ours[f'p_{c}'] - theirs[f'p_{c}']) < 1e-4
        assert {ours[f'balanced_{c}'], ours[f'high_sensitivity_{c}']} <= {0, 1} or pd.isna(ours[f'balanced_{c}'])
    if samples.is_dir(): assert out.n_slices.iloc[2] == 36 and 0 <= out.p_any.iloc[2] <= 1

    # the heatmap explorer on the finished run
    from ich_nb.widgets import HeatmapExplorer
    h = HeatmapExplorer(run)
    assert h.message.value == '' and len(h.study.options) == metrics['test_studies'] and 'R1 R2 R3' in h.calls.value
    first = h.shown['heatmap'].copy()
    h.alpha.value = 0.9
    assert not np.array_equal(first, h.shown['heatmap'])
    h.cls.value = 'subdural'
    assert h.shown['heatmap'].shape == first.shape

    # determinism: CNNslc, killed in its first epochs and resumed, is the CNNslc the same data and seed give without a break,
    # to the byte (trained here, with as many torch threads as the run's kernel had, on a copy of the run without its models and predictions)
    shutil.copytree(run, tmp_path / 'again', ignore=shutil.ignore_patterns('models', 'preds', 'logs'))
    again = Run(tmp_path / 'again')
    device = pd.read_csv(run / 'tables' / 'inference_cnns.csv').set_index('model').device['CNNslc']     # e.g. "CPU (x86_64, 2 threads)"
    used = re.search(r'(\d+) threads', device); assert used, device
    threads = torch.get_num_threads(); torch.set_num_threads(int(used[1]))
    try: unbroken, rescored = score_slices(again, 'slc', fit_cnn(again, 'slc')), score_slices(Run(run), 'wdw')
    finally: torch.set_num_threads(threads)
    for model, got in (('CNNslc', unbroken), ('CNNwdw', rescored)):                  # CNNwdw: scored again from its kept epoch
        for a, f in zip(got, ('probs.npy', 'embeddings.npy')):
            assert a.tobytes() == np.load(run / 'preds' / model / f).tobytes(), (model, f)

    # a result changed after the run is not trusted: the step that wrote it, and the steps after, run again, to the same
    table, metrics = run / 'preds' / 'studies.csv', (run / 'metrics.json').read_text()
    written = table.read_bytes()
    table.write_bytes(written[:5000])                                           # as a disk error or a hand edit leaves it
    r = subprocess.run([ICH_NB, 'reproduce', '--run-dir', run, *SHORTER], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '[3/5] 03_rnns: done before, skipped' in r.stdout
    assert '[4/5] 04_evaluate: preds/studies.csv changed or gone since it was made; making all its results again' in r.stdout
    assert '[5/5] 05_explain ...' in r.stdout
    assert table.read_bytes() == written and (run / 'metrics.json').read_text() == metrics

    # every kind of result a later step or predict reads, changed in a copy of the run, is found and named with the step
    # that made it; a copy itself (every mtime new) is not a change
    copy = tmp_path / 'copy'; shutil.copytree(run, copy)
    assert changed_results(copy) == {}
    entry = sorted(p.relative_to(copy).as_posix() for p in (copy / 'cache').rglob('*') if p.is_file())[0]
    for made_by, rel in [(('01_data',), entry), (('02_cnns',), Run(copy).checkpoint('cnn_wdw').relative_to(copy).as_posix()),
                         (('02_cnns',), 'preds/CNNwdw/embeddings.npy'), (('03_rnns',), 'preds/CNNwdw-RNN/probs.npy'),
                         (('04_evaluate', '05_explain'), 'thresholds.json')]:      # 05_explain writes the report, and so it, again
        f = copy / rel; kept_bytes = f.read_bytes()
        f.write_bytes(kept_bytes[:-8] + bytes(b ^ 0xFF for b in kept_bytes[-8:]))          # the same size, other bytes
        assert changed_results(copy) == {step: [rel] for step in made_by}, rel
        f.write_bytes(kept_bytes)
    assert changed_results(copy) == {}

    # a changed checkpoint or threshold is refused by predict, naming it (the CLI: exit 2 and the message); put back, it is trusted again
    checkpoint, thresholds = Run(run).checkpoint('cnn_wdw'), run / 'thresholds.json'
    kept = {f: f.read_bytes() for f in (checkpoint, thresholds)}
    checkpoint.write_bytes(kept[checkpoint] + b' ')
    r = subprocess.run([ICH_NB, 'predict', study, '--run-dir', run, '--out', tmp_path / 'p2.csv'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and str(checkpoint) in r.stderr and 'changed since this run made it' in r.stderr, r.stderr[-2000:]
    checkpoint.write_bytes(kept[checkpoint]); thresholds.write_bytes(kept[thresholds] + b' ')
    with pytest.raises(ConfigError, match=re.escape(f'{thresholds} changed since this run made it')): predict_studies(run, [study])
    thresholds.write_bytes(kept[thresholds])
    assert abs(predict_studies(run, [study]).p_any.iloc[0] - out.p_any.iloc[0]) < 1e-6


def test_the_paper_profile_runs_on_the_real_layouts(tmp_path):
    "`--profile paper --data-dir` on a phantom written as RSNA and CQ500 are: the paper's defaults (every CQ500 series, crop, the authors'"
    " normalisation and augmentation, the best validation epoch, bootstrap intervals), tiny networks, the ledger in the report."
    data = tmp_path / 'data'
    make_phantom(data / 'rsna', n_studies=16, layout='rsna', site='A', matrix=64, prevalence=0.6, progress=False)
    made = make_phantom(data / 'cq500', n_studies=6, layout='cq500', site='B', matrix=64, prevalence=0.6, progress=False)
    tiny = {'cnn.arch': 'resnet10t', 'cnn.pretrained': 'false', 'cnn.epochs': '2', 'image.size': '32', 'image.cache_size': '32',
            'rnn.hidden': '32', 'rnn.epochs': '2', 'eval.n_boot': '50', 'workers': '2'}
    r = subprocess.run([ICH_NB, 'reproduce', '--profile', 'paper', '--data-dir', data, '--run-dir', tmp_path / 'run',
                        *[a for k, v in tiny.items() for a in ('-p', k, v)]], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / 'run'
    slices, studies = pd.read_csv(run / 'tables' / 'slices.csv'), pd.read_csv(run / 'tables' / 'studies.csv')
    test = slices[slices.split == 'test']
    assert test.series_id.nunique() == made.series.sum() > len(made)          # every series of every CQ500 study
    assert (studies.split == 'test').sum() == len(made)
    losses = json.loads((run / 'models' / 'cnn_wdw_losses.json').read_text())
    assert sorted(losses) == ['0', '1'] and all(v['valid'] is not None for v in losses.values())
    assert not list((run / 'models').glob('rnn_CNNens_RNN*'))                 # CNNens-RNN: the mean of its CNNs' RNNs, no head of its own
    page = (run / 'report.html').read_text()
    assert 'deviation ledger' in page and 'rnn.ensemble' in page and 'percentile bootstrap, 50 resamples' in page
    assert "Table S1" in page and 'Inference time per slice' in page
    metrics = json.loads((run / 'metrics.json').read_text())
    assert set(metrics['models']) == set(MODELS)
