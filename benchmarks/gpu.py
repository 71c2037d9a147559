"""The paper's models on a GPU: CNN training and inference at 480 px in four settings, the loader
that feeds it, the package's own training loop, the RNN head, and DICOM-to-probabilities inference.

    PYTHONPATH=. python3 benchmarks/gpu.py [--out DIR] [--budget 330]      (a CUDA GPU; about 6 minutes)
    PYTHONPATH=. python3 benchmarks/gpu.py --dry-run                        (tiny sizes on the CPU: checks the script)

1. ResNeXt-101 32x8d at 480 px (random weights; the numbers do not depend on them): training
   images/s (Adam, the package's weighted BCE) and inference slices/s for fp32 eager, bf16 autocast,
   bf16 + channels-last, and bf16 + channels-last + torch.compile (inference, then training while
   the budget lasts). fp32 convolutions use PyTorch's default (TF32 in cuDNN). For inference also
   with each batch norm folded into the convolution before it ('-fold', eager and compiled; the
   package's `fold_batchnorm`, which `predict_slices` and `predict_studies` use), which leaves a
   network with the same outputs (checked) and one pass less over each activation; and
   bf16 + channels-last with cuDNN's heuristic choice of algorithms ('-heur', as the package ran
   before `cnn_learner` turned on `cudnn.benchmark`; every other setting times them).
   (`--variants` picks.)
   Then a profile of three bf16 + channels-last training steps: the costliest operators (kernels.txt).
2. The loader: a 512 px phantom cached at 512 px (`build_cache`, all cores), fastai DataLoaders at
   480 px with the augmentation and the resize on the GPU, with 0 and several worker processes,
   timed within one long epoch (the phantom's training rows repeated: fastai starts its workers
   again at each epoch, which a short epoch would time too), against what training consumes; the
   seconds a new epoch waits for its first batch; and the same batches made through PIL images, as the loader
   made them before it took channels-first tensors; blank batches handed from workers to the GPU
   (the cost of moving batches alone); a profile of the main process while it loads
   (loader_profile.txt).
3. The package's training loop (`cnn_learner` + `fit`: bf16, channels-last, PyTorch's fused Adam) on
   that cache, timed in the steady part of one long epoch, and again with fastai's Adam, and with
   fewer waits for the GPU (fastai's smoothed loss copies each batch's loss to the CPU, and its
   loader copies each batch to the GPU with non_blocking=False: both wait for all queued work; here
   the loss stays on the GPU and batches are pinned and copied without waiting); before those,
   where the loop waits (CUDA's sync debug mode, calls per line); then
   `predict_slices` on the same cache; a checkpointed run resumed on the device, with each Adam.
4. The RNN head (CNNens-RNN: 2 x 2048 features, hidden 2048) on 40-slice studies.
5. `predict_studies` end to end on phantom studies (DICOM files in, CNNens-RNN probabilities out),
   its slices decoded in one process and by worker processes; loading the models is timed apart
   (a call with no study), as it is paid once per call, not per study.
Prints a table at the end and writes gpu.json into --out. The paper: 0.0205 s per slice at inference
(49 slices/s), about 50 h per model on four P100s.
"""
import argparse, contextlib, json, os, platform, shutil, sys, tempfile, time, warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from fastai.callback.core import Callback
from fastai.learner import AvgSmoothLoss

from ich_nb.cnn import cnn_model, fold_batchnorm
from ich_nb.train import WeightedBCE

T0 = time.perf_counter()
RESULTS = {}


def left(budget): return budget - (time.perf_counter() - T0)


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def timed(f, n, dev, warm=3):
    "Seconds per call of `f`: `warm` untimed calls, then the mean of `n` calls timed back to back."
    for _ in range(warm): f()
    sync(dev); t = time.perf_counter()
    for _ in range(n): f()
    sync(dev); return (time.perf_counter() - t) / n


def folded_model(arch, dev):
    "`arch` in eval mode with its batch norms folded, checked against the unfolded model on a small fp32 batch."
    model = cnn_model(arch).eval()
    for m in model.modules():                                         # statistics as a trained network has them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, .1); m.running_var.uniform_(.5, 2); m.weight.data.uniform_(.5, 1.5); m.bias.data.normal_(0, .1)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(): y = model(x); f = fold_batchnorm(model); gap = (f(x) - y).abs().max().item()
    assert gap < 1e-4 * max(1, y.abs().max().item()), f"folding changed the outputs by {gap}"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in f.modules()), "a batch norm was left unfolded"
    return f.to(dev)


def cnn_rates(arch, size, batch, ibatch, variant, steps, dev, train=True, infer=True):
    "Training images/s and inference slices/s of `arch` in `variant` ('fp32', 'bf16', 'bf16-cl', '...-compile'; '-fold': inference only)."
    torch.manual_seed(0)
    fold = '-fold' in variant
    model = folded_model(arch, dev) if fold else cnn_model(arch).to(dev)
    train = train and not fold
    fmt = torch.channels_last if '-cl' in variant else torch.contiguous_format
    model = model.to(memory_format=fmt)
    bf16 = variant.startswith('bf16') and dev.type == 'cuda'
    net = torch.compile(model) if variant.endswith('compile') else model
    ac = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)
    out = {}
    if train:
        x = torch.randn(batch, 3, size, size, device=dev).to(memory_format=fmt)
        y = (torch.rand(batch, 6, device=dev) > 0.8).float()
        opt, loss_f = torch.optim.Adam(model.parameters(), lr=5e-5, eps=1e-8), WeightedBCE().to(dev)
        model.train()
        def step():
            with ac(): loss = loss_f(net(x), y)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        out['train'] = batch / timed(step, steps, dev)
        del x, y, opt
    if infer:
        model.eval()
        x = torch.randn(ibatch, 3, size, size, device=dev).to(memory_format=fmt)
        def fwd():
            with torch.no_grad(), ac(): net(x)
        out['infer'] = ibatch / timed(fwd, steps, dev)
        del x
    del model, net
    if dev.type == 'cuda': torch.cuda.empty_cache()
    return out


def kernel_table(arch, size, batch, dev, out, steps=3):
    "Where a bf16 + channels-last training step spends its time: the 15 costliest operators, into kernels.txt."
    from torch.profiler import ProfilerActivity, profile
    model = cnn_model(arch).to(dev).to(memory_format=torch.channels_last).train()
    x = torch.randn(batch, 3, size, size, device=dev).to(memory_format=torch.channels_last)
    y = (torch.rand(batch, 6, device=dev) > 0.8).float()
    opt, loss_f = torch.optim.Adam(model.parameters(), lr=5e-5), WeightedBCE().to(dev)
    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == 'cuda'): loss = loss_f(model(x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    for _ in range(2): step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == 'cuda' else [])
    with profile(activities=acts) as prof:
        for _ in range(steps): step()
        sync(dev)
    key = 'self_cuda_time_total' if dev.type == 'cuda' else 'self_cpu_time_total'
    table = prof.key_averages().table(sort_by=key, row_limit=15)
    (out / 'kernels.txt').write_text(table)
    return table


def phantom_cache(tmp, studies, matrix, workers):
    "A phantom in RSNA's layout, indexed, split and cached at its own matrix; seconds for each part."
    from ich_nb.cache import build_cache
    from ich_nb.data import index_rsna, split_patients
    from ich_nb.phantom import make_phantom
    t = time.perf_counter()
    make_phantom(tmp / 'rsna', n_studies=studies, layout='rsna', site='A', matrix=matrix, workers=workers, progress=False)
    t_make = time.perf_counter() - t
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        t = time.perf_counter(); slices, st = index_rsna(tmp / 'rsna', workers=workers, progress=False); t_index = time.perf_counter() - t
    st = split_patients(st, valid_pct=0.2, seed=0)
    slices = slices.merge(st[['study_id', 'split']], on='study_id')
    t = time.perf_counter(); build_cache(slices, tmp / 'cache', matrix, workers=workers, progress=False); t_cache = time.perf_counter() - t
    return slices, dict(slices=len(slices), make_s=t_make, index_files_per_s=len(slices) / t_index,
                        cache_slices_per_s=len(slices) / t_cache, workers=workers)


class HWCImage:
    "The loader's items as they were before: (h, w, 3) arrays made into PIL images by fastai's `ImageBlock`."
    def __init__(self, cache): self.cache = cache
    def __call__(self, r):
        from ich_nb.cache import cached_images
        return cached_images(self.cache, r.series_id, r.slice_idx, r.n_slices, 'slc')


def pil_dls(slices, cache, bs, workers, dev, size):
    "`slice_dls` as it was built before channels-first tensors: the same batches, through PIL."
    from fastai.vision.all import (ColReader, ColSplitter, DataBlock, ImageBlock, MultiCategoryBlock, Normalize,
                                   imagenet_stats)
    from ich_nb.cnn import DeviceResize, paper_augmentation
    from ich_nb.labels import CLASSES
    df = slices[slices.split.isin(['train', 'valid'])].assign(is_valid=lambda d: d.split == 'valid').reset_index(drop=True)
    block = DataBlock(blocks=(ImageBlock, MultiCategoryBlock(encoded=True, vocab=list(CLASSES))), get_x=HWCImage(cache),
                      get_y=ColReader(list(CLASSES)), splitter=ColSplitter('is_valid'),
                      batch_tfms=paper_augmentation() + [DeviceResize(size), Normalize.from_stats(*imagenet_stats)])
    return block.dataloaders(df, bs=bs, num_workers=workers, device=dev)


def one_epoch(slices, batches, bs):
    "The training rows repeated until one epoch holds at least `batches` batches (validation rows once): no epoch restarts while timing."
    train = slices[slices.split == 'train']
    return pd.concat([train] * -(-(batches + 2) * bs // len(train)) + [slices[slices.split == 'valid']], ignore_index=True)


def epoch_start(slices, cache, size, bs, workers, dev, reps=3, augment='paper'):
    "Seconds from a new epoch's `iter` to its first batch (fastai starts the worker processes again each epoch): best of `reps`."
    from ich_nb.cnn import slice_dls
    dls = slice_dls(slices, cache, 'slc', bs=bs, num_workers=workers, device=dev, size=size, augment=augment)
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); it = iter(dls.train); next(it); sync(dev); ts.append(time.perf_counter() - t); del it
    return min(ts)


def loader_rate(slices, cache, size, bs, workers, dev, batches, pil=False):
    "Images/s of fastai training batches at `size` px (augmentation and resize on `dev`), steady, within one long epoch."
    from ich_nb.cnn import slice_dls
    skip = 2 * workers + 1                              # the start-up and the batches the workers made ahead (two each)
    batches = max(batches, 8 * workers)                 # long against what they make ahead, which comes in bursts
    table = one_epoch(slices, skip + batches, bs)
    dls = (pil_dls(table, cache, bs, workers, dev, size) if pil else
           slice_dls(table, cache, 'slc', bs=bs, num_workers=workers, device=dev, size=size))
    it = iter(dls.train)
    for _ in range(skip): next(it)
    sync(dev); t = time.perf_counter()
    n = sum(len(next(it)[0]) for _ in range(batches))
    sync(dev)
    return n / (time.perf_counter() - t)


class SteadyRate(Callback):
    "Images/s of training from batch `skip` to the end of the epoch's training (workers' start-up and validation left out)."
    def __init__(self, skip=10): self.skip, self.rate, self.t0 = skip, None, None
    def before_batch(self):
        if self.training and self.iter == self.skip: sync(self.dls.device); self.t0, self.n0 = time.perf_counter(), self.iter
    def after_train(self):
        sync(self.dls.device)
        if self.t0: self.rate = (self.n_iter - self.n0) * self.dls.train.bs / (time.perf_counter() - self.t0)


class BlankSlices(torch.utils.data.Dataset):
    "Items that cost nothing to make: 8-bit (3, matrix, matrix) zeros, to time only the hand-over of batches."
    def __init__(self, matrix, n=100_000): self.matrix, self.n = matrix, n
    def __len__(self): return self.n
    def __getitem__(self, i): return torch.zeros(3, self.matrix, self.matrix, dtype=torch.uint8)


def handoff_rate(matrix, bs, workers, dev, batches):
    "Images/s of batches of blank items from `workers` processes to `dev`: what moving batches costs, without making items."
    dl = torch.utils.data.DataLoader(BlankSlices(matrix), batch_size=bs, num_workers=workers)
    it, batches = iter(dl), max(batches, 8 * workers)   # as in loader_rate: past what the workers made ahead, long enough
    for _ in range(2 * workers + 1): next(it)
    sync(dev); t = time.perf_counter()
    for _ in range(batches): next(it).to(dev)
    sync(dev)
    return batches * bs / (time.perf_counter() - t)


def loader_profile(slices, cache, size, bs, workers, dev, batches, out):
    "cProfile of the main process while the loader delivers `batches` batches: where its time goes (loader_profile.txt)."
    import cProfile, io, pstats
    from ich_nb.cnn import slice_dls
    dls = slice_dls(one_epoch(slices, batches, bs), cache, 'slc', bs=bs, num_workers=workers, device=dev, size=size)
    it = iter(dls.train); next(it)
    prof = cProfile.Profile(); prof.enable()
    for _ in range(batches): next(it)
    sync(dev); prof.disable()
    buf = io.StringIO(); pstats.Stats(prof, stream=buf).sort_stats('tottime').print_stats(25)
    (out / 'loader_profile.txt').write_text(buf.getvalue())


class DeviceSmoothLoss(AvgSmoothLoss):
    "fastai's smoothed training loss, kept on the loss's device: fastai's copies each batch's loss to the CPU, which waits for the GPU."
    def accumulate(self, learn):
        self.count += 1
        loss = learn.loss.detach().mean()
        self.val = torch.lerp(loss, self.val.to(loss.device), self.beta)


@contextlib.contextmanager
def no_wait(learn):
    "fastai's loop with fewer waits for the GPU: the smoothed loss kept there, batches pinned and copied without waiting."
    import fastai.data.load
    learn.recorder.smooth_loss = DeviceSmoothLoss()
    for dl in learn.dls.loaders: dl.pin_memory = dl.fake_l.pin_memory = True
    copy = fastai.data.load.to_device                                   # fastai copies each batch with non_blocking=False,
    fastai.data.load.to_device = partial(copy, non_blocking=True)       # which waits for everything queued on the GPU
    try: yield
    finally: fastai.data.load.to_device = copy


def fit_learner(slices, cache, arch, size, bs, workers, dev, batches, fused=True):
    "The package's learner (`cnn_learner`) on slc batches from `cache`, one epoch of about `batches` batches."
    from ich_nb.cnn import cnn_learner, slice_dls
    dls = slice_dls(one_epoch(slices, batches, bs), cache, 'slc', bs=bs, num_workers=workers, device=dev, size=size)
    return cnn_learner(dls, arch, fused=fused)


def fit_rate(slices, cache, arch, size, bs, workers, dev, batches, fused=True, wait=True):
    "Images/s of the package's own training loop (`cnn_learner` + `fit`), one epoch of about `batches` batches: steady, and whole."
    learn = fit_learner(slices, cache, arch, size, bs, workers, dev, batches, fused)
    rate = SteadyRate(skip=min(10, len(learn.dls.train) // 2))
    with learn.no_logging(), learn.no_bar(), contextlib.nullcontext() if wait else no_wait(learn):
        sync(dev); t = time.perf_counter(); learn.fit(1, 5e-5, cbs=rate); sync(dev)
    return dict(steady=rate.rate, whole=len(learn.dls.train) * bs / (time.perf_counter() - t), batches=len(learn.dls.train))


def sync_points(slices, cache, arch, size, bs, workers, dev, batches, wait=True):
    "Where the package's loop waits for the GPU: synchronising calls per training batch by the line making them (CUDA's sync debug mode)."
    from collections import Counter
    learn = fit_learner(slices, cache, arch, size, bs, workers, dev, batches)
    with learn.no_logging(), learn.no_bar(), contextlib.nullcontext() if wait else no_wait(learn), \
         warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        if dev.type == 'cuda': torch.cuda.set_sync_debug_mode('warn')
        try: learn.fit(1, 5e-5)
        finally:
            if dev.type == 'cuda': torch.cuda.set_sync_debug_mode(0)
    hits = Counter(f"{Path(w.filename).parent.name}/{Path(w.filename).name}:{w.lineno}" for w in caught if 'synchroniz' in str(w.message))
    return dict(train_batches=len(learn.dls.train), valid_batches=len(learn.dls.valid), **dict(hits.most_common(10)))


def resume_check(slices, cache, dev, folder):
    "Train one epoch with `fit_resumable`, then resume for a second in a new learner, with each Adam: 'ok' or the error."
    from ich_nb.cnn import cnn_learner, slice_dls
    from ich_nb.train import fit_resumable
    out = {}
    for fused in (True, False):
        try:
            for epochs in (1, 2):
                learn = cnn_learner(slice_dls(slices, cache, 'wdw', bs=16, device=dev, size=64), 'resnet10t', fused=fused)
                with learn.no_logging(), learn.no_bar(): fit_resumable(learn, epochs, 1e-3, folder / str(fused), 'cnn')
            out['fused' if fused else 'fastai'] = 'ok'
        except Exception as e: out['fused' if fused else 'fastai'] = f'{type(e).__name__}: {e}'[:300]
    return out


def predict_slices_rate(slices, cache, arch, size, bs, workers, dev):
    "Slices/s of the package's `predict_slices` (the loader, bf16 + channels-last, embeddings and probabilities back)."
    from ich_nb.cnn import cnn_learner, predict_slices, slice_dls
    dls = slice_dls(slices, cache, 'slc', bs=bs, num_workers=workers, device=dev, size=size)
    learn = cnn_learner(dls, arch)                                        # untrained: predict_slices moves it to the device itself
    predict_slices(learn, slices.iloc[:bs], cache, 'slc', bs=bs)            # cuDNN plans
    sync(dev); t = time.perf_counter()
    probs, _ = predict_slices(learn, slices, cache, 'slc', bs=bs)
    sync(dev)
    return dict(slices=len(probs), slices_per_s=len(probs) / (time.perf_counter() - t), workers=workers, bs=bs)


def rnn_rates(n_emb, hidden, studies, n_slices, dev, steps):
    "Studies/s of the RNN head, training and inference, on `studies` x `n_slices` embeddings."
    from ich_nb.rnn import SliceRNN
    head = SliceRNN(n_emb, hidden).to(dev)
    e = torch.randn(studies, n_slices, n_emb, device=dev)
    lengths = torch.full((studies,), n_slices)
    y = (torch.rand(studies, n_slices, 6, device=dev) > 0.8).float()
    opt, loss_f = torch.optim.Adam(head.parameters(), lr=1e-5), WeightedBCE().to(dev)
    def step():
        loss = loss_f(head(e, lengths), y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    def fwd():
        with torch.no_grad(): head(e, lengths)
    return dict(train=studies / timed(step, steps, dev), infer=studies / timed(fwd, steps, dev))


def predict_rate(tmp, arch, size, matrix, hidden, studies, dev, workers):
    "Seconds per study of `predict_studies` (CNNens-RNN, random weights) on phantom studies in CQ500's layout, and to load the models."
    from ich_nb.cnn import cnn_model
    from ich_nb.files import write_json
    from ich_nb.labels import CLASSES
    from ich_nb.phantom import make_phantom
    from ich_nb.predict import predict_studies
    from ich_nb.run import load_profile, start_run
    from ich_nb.rnn import SliceRNN
    make_phantom(tmp / 'cq', n_studies=studies, layout='cq500', site='B', matrix=matrix, workers=workers, progress=False)
    dirs = sorted({f.parent for f in (tmp / 'cq').rglob('*.dcm')})
    study_dirs = sorted({d.parent if d.parent != tmp / 'cq' else d for d in dirs})
    p = load_profile('smoke', [('cnn.arch', arch), ('image.size', str(size)), ('image.cache_size', str(matrix)),
                               ('rnn.hidden', str(hidden)), ('cnn.epochs', '1'), ('rnn.epochs', '1')])   # epoch 0 is the final one
    rd = start_run(tmp / 'run', p)
    (rd / 'models').mkdir()
    nets = {pl: cnn_model(arch) for pl in ('wdw', 'slc')}
    for pl, m in nets.items(): torch.save(dict(model=m.state_dict()), rd / 'models' / f'cnn_{pl}_epoch0.pth')
    head = SliceRNN(sum(m.num_features for m in nets.values()), hidden)
    torch.save(dict(model=head.state_dict()), rd / 'models' / 'rnn_CNNens_RNN_epoch0.pth')
    write_json({'CNNens-RNN': {c: {'youden': 0.5} for c in CLASSES}}, rd / 'thresholds.json')
    predict_studies(rd, study_dirs[:1], device=dev)                     # warm-up: cuDNN plans
    out = {}
    for w in (1, workers):                                                # slices decoded in this process, then by workers
        secs = []
        for dirs in ([], study_dirs):                                     # no study (loading the models alone), then all
            sync(dev); t = time.perf_counter()
            res = predict_studies(rd, dirs, device=dev, workers=w)
            sync(dev); secs.append(time.perf_counter() - t)
        assert (res.error == '').all() and res.p_any.between(0, 1).all(), res
        dt = secs[1] - secs[0]
        out[f'{w} workers'] = dict(s_per_study=dt / len(res), slices_per_s=res.n_slices.sum() / dt, load_s=secs[0], whole_call_s=secs[1])
    return dict(studies=len(res), slices=int(res.n_slices.sum()), **out)


def main(a):
    dev = torch.device('cuda' if torch.cuda.is_available() and not a.dry_run else 'cpu')
    if dev.type == 'cuda': torch.backends.cudnn.benchmark = True
    elif not a.dry_run: sys.exit("this benchmark needs a CUDA GPU (or --dry-run)")
    name = torch.cuda.get_device_name() if dev.type == 'cuda' else platform.processor() or 'CPU'
    RESULTS['machine'] = dict(device=name, torch=torch.__version__, python=platform.python_version(), cores=os.cpu_count(),
                              date=time.strftime('%Y-%m-%d'))
    print(f"{name}, torch {torch.__version__}, {os.cpu_count()} cores; {a.arch} at {a.size} px, batch {a.batch} "
          f"(inference {a.ibatch})", flush=True)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    save = lambda: (out / 'gpu.json').write_text(json.dumps(RESULTS, indent=1, default=float))
    tmp = Path(tempfile.mkdtemp())
    try:
        cnn = RESULTS['cnn'] = {}
        for v in a.variants:
            if v.endswith('compile') and left(a.budget) < 150: cnn[v] = 'skipped (budget)'; continue
            t = time.perf_counter()
            torch.backends.cudnn.benchmark = dev.type == 'cuda' and not v.endswith('-heur')
            for k in (1, 2):                                  # out of memory: once more at half the batch
                try: cnn[v] = cnn_rates(a.arch, a.size, a.batch // k, a.ibatch // k, v, a.steps, dev, train=not v.endswith('compile')); break
                except torch.OutOfMemoryError: cnn[v] = f'out of memory at batch {a.batch // k}'; torch.cuda.empty_cache()
            if k == 2 and isinstance(cnn[v], dict): cnn[v]['batch'] = a.batch // 2
            print(f"cnn {v:16s} {cnn[v]}  ({time.perf_counter() - t:.0f} s)", flush=True); save()
        torch.backends.cudnn.benchmark = dev.type == 'cuda'

        if a.kernels:
            print(kernel_table(a.arch, a.size, a.batch, dev, out), flush=True)

        t = time.perf_counter()
        slices, RESULTS['cache'] = phantom_cache(tmp, a.studies, a.matrix, a.workers)
        print(f"cache {RESULTS['cache']}  ({time.perf_counter() - t:.0f} s)", flush=True)
        load = RESULTS['loader'] = {}
        for w in (0, a.workers // 2, a.workers):
            load[w] = loader_rate(slices, tmp / 'cache', a.size, a.batch, w, dev, a.loader_batches)
            print(f"loader {w:2d} workers: {load[w]:.0f} images/s", flush=True); save()
        pil = RESULTS['loader_pil'] = {}
        for w in (0, a.workers // 2):
            pil[w] = loader_rate(slices, tmp / 'cache', a.size, a.batch, w, dev, a.loader_batches, pil=True)
            print(f"loader through PIL (as before), {w:2d} workers: {pil[w]:.0f} images/s", flush=True); save()
        start = RESULTS['epoch_start_s'] = {}
        for w in (0, a.workers // 2, a.workers):
            start[w] = epoch_start(slices, tmp / 'cache', a.size, a.batch, w, dev)
            print(f"a new epoch's first batch, {w:2d} workers: after {start[w]:.2f} s", flush=True); save()
        hand = RESULTS['handoff'] = {}
        for w in (1, a.workers // 2):
            hand[w] = handoff_rate(a.matrix, a.batch, w, dev, a.loader_batches)
            print(f"blank batches from {w:2d} workers to the device: {hand[w]:.0f} images/s", flush=True); save()
        loader_profile(slices, tmp / 'cache', a.size, a.batch, a.workers // 2, dev, a.loader_batches, out)

        for wait in (True, False):
            key = 'syncs' if wait else 'syncs_no_wait'
            RESULTS[key] = sync_points(slices, tmp / 'cache', a.arch, a.size, a.batch, a.workers // 2, dev, 12, wait)
            print(f"calls that wait for the GPU in the package's loop{'' if wait else ', fewer waits'}: {RESULTS[key]}", flush=True); save()
        for key, fused, wait in (('fit', True, True), ('fit_fastai_adam', False, True), ('fit_no_wait', True, False)):
            t = time.perf_counter()
            RESULTS[key] = fit_rate(slices, tmp / 'cache', a.arch, a.size, a.batch, a.workers // 2, dev, a.fit_batches, fused, wait)
            print(f"{key} (cnn_learner, bf16 + channels-last, {a.workers // 2} workers, {'fused' if fused else 'fastai'} Adam"
                  f"{'' if wait else ', fewer waits for the GPU'}): {RESULTS[key]}  ({time.perf_counter() - t:.0f} s)", flush=True); save()

        t = time.perf_counter()
        RESULTS['predict_slices'] = predict_slices_rate(pd.concat([slices] * a.predict_repeat, ignore_index=True), tmp / 'cache', a.arch, a.size,
                                                        64, a.workers // 2, dev)
        print(f"predict_slices {RESULTS['predict_slices']}  ({time.perf_counter() - t:.0f} s)", flush=True); save()

        RESULTS['resume'] = resume_check(slices, tmp / 'cache', dev, tmp / 'resume')
        print(f"fit_resumable stopped after one epoch and resumed on {dev.type}: {RESULTS['resume']}", flush=True); save()

        RESULTS['rnn'] = rnn_rates(2 * a.features, a.hidden, 4, 40, dev, a.steps)
        print(f"rnn head {RESULTS['rnn']} studies/s", flush=True); save()

        if a.predict:
            t = time.perf_counter()
            RESULTS['predict'] = predict_rate(tmp, a.arch, a.size, a.matrix, a.hidden, a.predict_studies, dev, a.workers)
            print(f"predict_studies {RESULTS['predict']}  ({time.perf_counter() - t:.0f} s)", flush=True); save()

        v = 'bf16-cl-compile'
        if v in a.variants and isinstance(cnn.get(v), dict) and left(a.budget) > 100:
            t = time.perf_counter()
            try: cnn[v].update(cnn_rates(a.arch, a.size, a.batch, a.ibatch, v, a.steps, dev, infer=False))
            except (torch.OutOfMemoryError, AttributeError) as e: print(f"compiled training: {type(e).__name__}")
            print(f"cnn {v} (training too) {cnn[v]}  ({time.perf_counter() - t:.0f} s)", flush=True)
            save()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        save()
    print(f"\n{name}: {a.arch} at {a.size} px (the paper: 49 slices/s inference)")
    for v, r in cnn.items():
        if isinstance(r, dict):
            print(f"  {v:16s} train {r.get('train', float('nan')):8.1f} images/s   inference {r.get('infer', float('nan')):8.1f} slices/s"
                  f"  ({r.get('infer', float('nan')) / 49:.0f}x the paper)")
        else: print(f"  {v:16s} {r}")
    print(f"  loader (images/s by workers): {', '.join(f'{w}: {r:.0f}' for w, r in load.items())}")
    print(f"  a new epoch's first batch (s by workers): {', '.join(f'{w}: {r:.2f}' for w, r in start.items())}")
    for k in ('fit', 'fit_fastai_adam', 'fit_no_wait', 'predict_slices', 'predict'): print(f"  {k}: {RESULTS.get(k)}")
    print(f"  total {time.perf_counter() - T0:.0f} s")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='benchmarks/out')
    p.add_argument('--budget', type=float, default=330, help='seconds; the optional compiled runs are skipped past it')
    p.add_argument('--dry-run', action='store_true', help='tiny sizes on the CPU, to check the script')
    p.add_argument('--arch', default='resnext101_32x8d'); p.add_argument('--features', type=int, default=2048)
    p.add_argument('--size', type=int, default=480); p.add_argument('--matrix', type=int, default=512)
    p.add_argument('--batch', type=int, default=32); p.add_argument('--ibatch', type=int, default=128)
    p.add_argument('--steps', type=int, default=15); p.add_argument('--hidden', type=int, default=2048)
    p.add_argument('--studies', type=int, default=8); p.add_argument('--predict-studies', type=int, default=6)
    p.add_argument('--workers', type=int, default=min(16, os.cpu_count()))
    p.add_argument('--predict-repeat', type=int, default=16, help="predict_slices over the cached slices this many times")
    p.add_argument('--loader-batches', type=int, default=40); p.add_argument('--fit-batches', type=int, default=100)
    p.add_argument('--variants', nargs='+', default=['fp32', 'bf16', 'bf16-cl', 'bf16-cl-fold', 'bf16-cl-compile'],
                   choices=['fp32', 'bf16', 'bf16-cl', 'bf16-cl-heur', 'bf16-cl-fold', 'bf16-cl-compile', 'bf16-cl-fold-compile'],
                   help="the CNN settings to measure ('-fold': batch norm folded into the convolutions, inference only; '-heur': cuDNN not timing its algorithms)")
    p.add_argument('--no-kernels', dest='kernels', action='store_false', help='skip the profile of a training step')
    p.add_argument('--no-predict', dest='predict', action='store_false', help='skip predict_studies end to end')
    a = p.parse_args()
    if a.dry_run:
        a.arch, a.features, a.size, a.matrix, a.batch, a.ibatch, a.steps, a.hidden = 'resnet10t', 512, 48, 64, 8, 8, 2, 32
        a.studies, a.predict_studies, a.workers, a.loader_batches, a.fit_batches, a.budget, a.predict_repeat = 10, 2, 2, 4, 6, 0, 2
    main(a)
