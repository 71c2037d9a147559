"""CNN training and inference throughput (images/s) on this machine's CPU, for the smoke and
workshop backbones and the paper's ResNeXt-101 32x8d at 480 px (a few batches); inference also
with the batch norms folded (`fold_batchnorm`, as `predict_slices` runs), timed in turns with
the unfolded network.

    .venv/bin/python benchmarks/cnn.py [--threads N]

Synthetic 3-channel images; the same loss and optimiser as ich_nb.cnn; the model as timm builds it.
"""
import argparse, platform, time
import torch

from ich_nb.cnn import WeightedBCE, cnn_model, fold_batchnorm

CONFIGS = [('smoke', 'resnet10t', 64, 32, 5), ('workshop', 'resnet10t', 128, 32, 4), ('paper', 'resnext101_32x8d', 480, 4, 2)]


def measure(arch, size, bs, steps):
    model = cnn_model(arch)
    opt = torch.optim.Adam(model.parameters(), lr=5e-5, eps=1e-8)
    loss_f = WeightedBCE()
    x, y = torch.randn(bs, 3, size, size), (torch.rand(bs, 6) > 0.8).float()
    model.train()
    for i in range(steps + 1):                    # the first step warms up and is not timed
        if i == 1: t = time.perf_counter()
        opt.zero_grad(); loss_f(model(x), y).backward(); opt.step()
    train = bs * steps / (time.perf_counter() - t)
    folded, secs = fold_batchnorm(model), {'plain': 0., 'folded': 0.}
    model.eval()
    with torch.no_grad():
        for net in (model, folded): net(x)              # warm-up, not timed
        for _ in range(steps):                          # in turns, so that a drift in the CPU's speed hits both
            for name, net in (('plain', model), ('folded', folded)):
                t = time.perf_counter(); net(x); secs[name] += time.perf_counter() - t
    return train, bs * steps / secs['plain'], bs * steps / secs['folded']


def main(threads):
    if threads: torch.set_num_threads(threads)
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, arch, size, bs, steps in CONFIGS:
        train, infer, folded = measure(arch, size, bs, steps)
        print(f"{name:9s} {arch:18s} {size:3d} px  batch {bs:2d}: train {train:7.1f} images/s   inference {infer:7.1f} images/s"
              f"   folded {folded:7.1f} images/s ({folded / infer:.2f}x)")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--threads', type=int, default=0)
    main(p.parse_args().threads)
