"""Keep a finished run's executed paper series and report in docs/reference_run/, so that `make docs`
on a fresh clone shows the paper series with results (tools/docs.py reads it when no runs/ folder
has them). What is kept is what a reader needs, and small: the executed notebooks without widget
state, with the run folder's path written as runs/<name>; report.html with plotly.js left out (the
site has its own copy); metrics.json and params.yaml.

    python tools/reference_run.py RUN_DIR [--name workshop]
"""
import argparse, base64, io, re, shutil, sys
from pathlib import Path

import nbformat, plotly.offline
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / 'docs' / 'reference_run'
PLOTLY_PLACEHOLDER = '<script src="PLOTLY_JS"></script>'   # tools/docs.py puts the site's plotly.min.js here
PLOTLY_BUNDLE = '<script type="text/javascript">' + plotly.offline.get_plotlyjs() + '</script>'


BIG_PNG = 150_000          # bytes of base64: a picture of noisy CT this big is kept as a JPEG (quality 85) instead


def _jpeg(png_b64:str) -> str:
    "A base64 PNG as a base64 JPEG of quality 85 (noisy CT compresses five to ten times better so)."
    img = Image.open(io.BytesIO(base64.b64decode(png_b64))).convert('RGB')
    buf = io.BytesIO(); img.save(buf, 'JPEG', quality=85)
    return base64.b64encode(buf.getvalue()).decode()


def _local_paths(text:str, run:Path, name:str, also=()) -> str:
    "`text` with the run folder's absolute path (and the paths in `also`: where a copied run was made) as runs/<name>, and no other path of this machine."
    for p in sorted({str(run.resolve()), str(run), *also}, key=len, reverse=True): text = text.replace(p, f'runs/{name}')
    return re.sub(r'(/(?:tmp|work|home|root|Users)/[^\s"\'<>]*/)(?=ich_nb/|site-packages/)', '', text)


def keep(run:Path, name:str, dest:Path=DEST) -> list:
    "Copy `run`'s executed series, report and results into `dest` (replacing what was there); the files written."
    missing = [f for f in ('report.html', 'metrics.json', 'params.yaml') if not (run / f).exists()] + \
              ([] if sorted((run / 'executed').glob('*.ipynb')) else ['executed/*.ipynb'])
    if missing: sys.exit(f"{run} is not a finished run: it lacks {', '.join(missing)}; finish it with `ich-nb reproduce` first")
    made_in = {nbformat.read(f, as_version=4).metadata.get('papermill', {}).get('parameters', {}).get('run_dir')
               for f in (run / 'executed').glob('*.ipynb')} - {None}   # a run copied from elsewhere names its first folder
    if dest.exists(): shutil.rmtree(dest)
    (dest / 'executed').mkdir(parents=True)
    for f in sorted((run / 'executed').glob('*.ipynb')):
        nb = nbformat.read(f, as_version=4)
        nb.metadata.pop('widgets', None)
        if 'papermill' in nb.metadata:
            nb.metadata.papermill.update(input_path=f'nbs/paper/{f.name}', output_path=f'runs/{name}/executed/{f.name}')
        for c in nb.cells:
            for o in c.get('outputs', []):
                data = o.get('data', {})
                data.pop('application/vnd.jupyter.widget-view+json', None)
                if len(data.get('image/png', '')) > BIG_PNG: data['image/jpeg'] = _jpeg(data.pop('image/png'))
        (dest / 'executed' / f.name).write_text(_local_paths(nbformat.writes(nb), run, name, made_in))
    report = (run / 'report.html').read_text()
    if PLOTLY_BUNDLE not in report: sys.exit(f"{run / 'report.html'} does not embed this plotly's bundle: make it again with this checkout")
    report = report.replace(f'>ich_nb: {run.resolve().name}<', f'>ich_nb: {name}<')           # its title and heading name the run as kept
    report = re.sub(r'data:image/png;base64,([A-Za-z0-9+/=]{%d,})' % BIG_PNG, lambda m: 'data:image/jpeg;base64,' + _jpeg(m[1]), report)
    (dest / 'report.html').write_text(_local_paths(report.replace(PLOTLY_BUNDLE, PLOTLY_PLACEHOLDER), run, name, made_in))
    for f in ('metrics.json', 'params.yaml'): (dest / f).write_text(_local_paths((run / f).read_text(), run, name, made_in))
    (dest / 'NAME').write_text(name + '\n')
    return sorted(p for p in dest.rglob('*') if p.is_file())


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('run', type=Path, help='a finished run folder')
    ap.add_argument('--name', default='workshop', help='how the site names the run: runs/NAME (default: workshop)')
    a = ap.parse_args()
    files = keep(a.run, a.name)
    print(f"kept {len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB, in {DEST.relative_to(ROOT)}/ as runs/{a.name}")
