"""CNN training and inference throughput (images/s) on this machine's CPU, for the smoke and
workshop backbones and the paper's ResNeXt-101 32x8d at 480 px (a few batches each).

    .venv/bin/python benchmarks/cnn.py [--threads N] [--no-loop]

1. The network alone (synthetic images; the package's loss and the paper's Adam): training with
   weights and images in PyTorch's default layout and channels-last (what `cnn_learner` uses);
   inference in the default layout, with the batch norms folded (`fold_batchnorm`), and folded +
   channels-last (what `predict_slices` and `predict_studies` run). The settings of one network
   are timed in turns, so that a drift in the CPU's speed hits them all.
2. The package's own loop (`cnn_learner` + `fit`) at the workshop's settings (resnet10t, 128 px,
   batch 32, 2 loader workers, a phantom's slc inputs), with and without fastai's `ChannelsLast`
   callback that `cnn_learner` adds: images/s in the steady part of one epoch of 40 batches, and
   the whole epoch's seconds, twice each, in turns.
"""
import argparse, copy, platform, tempfile, time, warnings
from pathlib import Path

import torch

from ich_nb.cnn import cnn_model, fold_batchnorm
from ich_nb.train import WeightedBCE

CONFIGS = [('smoke', 'resnet10t', 64, 32, 5), ('workshop', 'resnet10t', 128, 32, 4), ('paper', 'resnext101_32x8d', 480, 4, 2)]
CL = torch.channels_last


def in_turns(calls:dict, steps) -> dict:
    "Seconds of `steps` runs of each function in `calls`, run in turns after one untimed run each."
    for f in calls.values(): f()
    secs = dict.fromkeys(calls, 0.)
    for _ in range(steps):
        for name, f in calls.items():
            t = time.perf_counter(); f(); secs[name] += time.perf_counter() - t
    return secs


def train_step(model, x, y):
    "One training step of `model` on batch (`x`, `y`), as a function."
    opt, loss_f = torch.optim.Adam(model.parameters(), lr=5e-5, eps=1e-8), WeightedBCE()
    def step(): opt.zero_grad(); loss_f(model(x), y).backward(); opt.step()
    return step


def measure(arch, size, bs, steps) -> dict:
    "Images/s of `arch` in each setting: train_plain, train_cl, infer_plain, infer_folded, infer_folded_cl."
    torch.manual_seed(0)
    x, y = torch.randn(bs, 3, size, size), (torch.rand(bs, 6) > 0.8).float()
    plain = cnn_model(arch)
    cl = copy.deepcopy(plain).to(memory_format=CL)
    secs = {f'train_{k}': v for k, v in in_turns({'plain': train_step(plain, x, y), 'cl': train_step(cl, x.contiguous(memory_format=CL), y)}, steps).items()}
    folded = fold_batchnorm(plain)
    folded_cl = copy.deepcopy(folded).to(memory_format=CL)
    plain.eval()
    with torch.no_grad():
        calls = {'plain': lambda: plain(x), 'folded': lambda: folded(x), 'folded_cl': lambda: folded_cl(x.contiguous(memory_format=CL))}
        secs |= {f'infer_{k}': v for k, v in in_turns(calls, steps).items()}
    return {k: bs * steps / s for k, s in secs.items()}


def loop_rates(reps=2, batches=40, bs=32):
    "The package's loop at the workshop's settings, with and without channels-last: (steady images/s, epoch seconds) per run."
    from fastai.callback.channelslast import ChannelsLast
    from gpu import SteadyRate, one_epoch, phantom_cache
    from ich_nb.cnn import cnn_learner, slice_dls
    tmp = Path(tempfile.mkdtemp())
    slices = phantom_cache(tmp, 12, 128, 2)[0]
    out = {'default layout': [], 'channels-last': []}
    for _ in range(reps):
        for name in out:
            torch.manual_seed(0)
            learn = cnn_learner(slice_dls(one_epoch(slices, batches, bs), tmp / 'cache', 'slc', bs=bs, num_workers=2, size=128), 'resnet10t')
            if name == 'default layout': learn.remove_cb(ChannelsLast)
            rate = SteadyRate(skip=5)
            with learn.no_logging(), learn.no_bar():
                t = time.perf_counter(); learn.fit(1, 1e-3, cbs=rate); out[name].append((rate.rate, time.perf_counter() - t))
    return out


def main(threads, loop):
    if threads: torch.set_num_threads(threads)
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, arch, size, bs, steps in CONFIGS:
        r = measure(arch, size, bs, steps)
        print(f"{name:9s} {arch:17s} {size:3d} px, batch {bs:2d}: train {r['train_plain']:6.1f}, channels-last {r['train_cl']:6.1f} "
              f"({r['train_cl'] / r['train_plain']:.2f}x); inference {r['infer_plain']:6.1f}, folded {r['infer_folded']:6.1f} "
              f"({r['infer_folded'] / r['infer_plain']:.2f}x), folded + channels-last {r['infer_folded_cl']:6.1f} "
              f"({r['infer_folded_cl'] / r['infer_plain']:.2f}x) images/s", flush=True)
    if loop:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for name, runs in loop_rates().items():
                print(f"the package's loop, workshop settings, {name:14s}: " + ', '.join(f'{r:.1f} images/s steady, epoch {s:.1f} s' for r, s in runs))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--no-loop', action='store_true', help="only the network alone")
    a = p.parse_args()
    main(a.threads, not a.no_loop)
