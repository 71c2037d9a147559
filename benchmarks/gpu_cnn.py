"""GPU training and inference throughput of the paper's CNN, ResNeXt-101 32x8d at 480 px:
fp32 against bf16 autocast, each in the default and the channels-last memory format.

    python benchmarks/gpu_cnn.py [--batch 32] [--steps 20]     (needs a CUDA GPU; about 3 minutes)

Synthetic images, the package's loss (ich_nb.cnn.WeightedBCE) and the paper's Adam. For reference:
the paper took about 50 h per model on four P100s and 0.0205 s per slice at inference (49 slices/s).
"""
import argparse, time
import torch

from ich_nb.cnn import WeightedBCE, cnn_model


def run(model, x, y, train, bf16, steps):
    opt = torch.optim.Adam(model.parameters(), lr=5e-5, eps=1e-8) if train else None
    loss_f = WeightedBCE()
    model.train(train)
    def step():
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(train):
            out = model(x)
            if train:
                opt.zero_grad(set_to_none=True); loss_f(out, y).backward(); opt.step()
    for _ in range(3): step()                               # warm-up (cuDNN autotuning)
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(steps): step()
    torch.cuda.synchronize()
    return x.shape[0] * steps / (time.perf_counter() - t)


def main(batch, steps):
    assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    torch.backends.cudnn.benchmark = True
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, batch {batch}, 480 px")
    for channels_last in (False, True):
        for bf16 in (False, True):
            model = cnn_model('resnext101_32x8d').cuda()
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model = model.to(memory_format=fmt)
            x = torch.randn(batch, 3, 480, 480, device='cuda').to(memory_format=fmt)
            y = (torch.rand(batch, 6, device='cuda') > 0.8).float()
            tr, inf = run(model, x, y, True, bf16, steps), run(model, x, y, False, bf16, steps)
            print(f"{'bf16' if bf16 else 'fp32'} {'channels-last' if channels_last else 'contiguous   '}: "
                  f"train {tr:7.1f} images/s, inference {inf:7.1f} images/s "
                  f"({1000 / inf:.2f} ms per slice; the paper: 20.5)")
            del model, x; torch.cuda.empty_cache()


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=20)
    a = p.parse_args(); main(a.batch, a.steps)
