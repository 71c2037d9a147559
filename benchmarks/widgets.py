"""How fast the explorers redraw when a slider moves (a workshop needs well under 200 ms).

    .venv/bin/python benchmarks/widgets.py [--run-dir runs/smoke]

The window explorer on a 512 x 512 phantom series; the heatmap explorer on a finished run, if given.
"""
import argparse, statistics, tempfile, time
from pathlib import Path
import numpy as np

from ich_nb.phantom import make_phantom
from ich_nb.widgets import HeatmapExplorer, WindowExplorer


def timed(set_value, values, get_seconds):
    out = []
    for v in values:
        t = time.perf_counter(); set_value(v); out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000, max(out) * 1000


def main(run_dir):
    tmp = Path(tempfile.mkdtemp())
    make_phantom(tmp, n_studies=1, layout='cq500', site='B', matrix=512, prevalence=1., progress=False)
    t = time.perf_counter(); ex = WindowExplorer(next(tmp.glob('CQ500CT*'))); load = time.perf_counter() - t
    print(f"window explorer, {ex.vol.shape[0]} slices of {ex.vol.shape[1]}x{ex.vol.shape[2]}: load {load:.2f} s")
    for name, w, values in [('level', ex.level, range(20, 120, 5)), ('width', ex.width, range(60, 460, 20)),
                            ('slice', ex.slice, range(ex.slice.max + 1))]:
        med, worst = timed(lambda v: setattr(w, 'value', v), values, None)
        print(f"  move {name:6s}: median {med:6.1f} ms, worst {worst:6.1f} ms per redraw")
    if run_dir:
        h = HeatmapExplorer(run_dir)
        for name, w, values in [('slice', h.slice, range(h.slice.max + 1)), ('alpha', h.alpha, np.linspace(0, 1, 21))]:
            med, worst = timed(lambda v: setattr(w, 'value', v), values, None)
            print(f"heatmap explorer, move {name}: median {med:6.1f} ms, worst {worst:6.1f} ms per redraw")
        t = time.perf_counter(); h.cls.value = 'subdural'
        print(f"heatmap explorer, new class (Grad-CAM of the whole study): {time.perf_counter() - t:.2f} s")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--run-dir')
    main(p.parse_args().run_dir)
