"""The documentation site as a reader sees it: `tools/docs.py` (what `make docs` runs) builds it offline with
nbconvert, and headless Debian Chromium opens every page: it loads, every image has pixels, every plotly figure
draws, every link inside the site lands on a file that exists. Also: each library notebook stays lean."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import nbformat, pytest

from conftest import ROOT

CHROMIUM = Path('/usr/bin/chromium')
NOTEBOOK_BUDGET_KB = 1024          # a library notebook with its outputs (PNG at sensible sizes)


def fake_run(tmp:Path) -> Path:
    "A run folder as the site reads it: the paper series 'executed' (a PNG, a plotly figure, its absolute path injected)."
    run = tmp / 'refrun'; (run / 'executed').mkdir(parents=True)
    import plotly.graph_objects as go, base64
    png = base64.b64encode((ROOT / 'README_files').glob('*.png').__next__().read_bytes()).decode()
    fig = go.Figure(go.Bar(x=['CNN', 'CNNens-RNN'], y=[0.8, 0.9])).to_plotly_json()
    for p in sorted((ROOT / 'nbs' / 'paper').glob('*.ipynb')):
        nb = nbformat.read(p, as_version=4)
        c = nbformat.v4.new_code_cell(f"run_dir = '{run}'", metadata={'tags': ['injected-parameters']})
        show = nbformat.v4.new_code_cell('fig.show()')
        show.outputs = [nbformat.v4.new_output('display_data', data={'application/vnd.plotly.v1+json': json.loads(json.dumps(fig, default=str)),
                                                                     'text/plain': 'Figure'}),
                        nbformat.v4.new_output('display_data', data={'image/png': png, 'text/plain': 'Figure'})]
        nb.cells[1:1] = [c, show]
        nbformat.write(nb, run / 'executed' / p.name)
    (run / 'report.html').write_text('<!doctype html><html><body><h1>report</h1><p>Made by '
                                     '<a href="executed_html/04_evaluate.html">04_evaluate</a>.</p></body></html>')
    return run


KEPT = ROOT / 'docs' / 'reference_run'   # the workshop run a fresh clone's site shows (tools/reference_run.py)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The site as `make docs` builds it on a fresh clone: with the kept reference run, or a made-up one where none is kept."
    tmp = tmp_path_factory.mktemp('docs')
    if shutil.which('quarto'): pytest.skip('quarto is installed: `make docs` runs nbdev_docs')
    run = KEPT if (KEPT / 'executed').is_dir() else fake_run(tmp)
    env = {**os.environ, 'IN_TEST': '1'}       # nbdev then leaves ich_nb/_modidx.py as nbdev_export made it: the other test worker reads ich_nb/
    r = subprocess.run([sys.executable, 'tools/docs.py', '--out', str(tmp / 'site'), '--run', str(run)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    return tmp / 'site', run


def test_nbdev_processes_every_notebook(site):
    "Every step of nbdev_docs before quarto's ran on the notebooks (quarto itself is not installable here)."
    proc = ROOT / '_proc'
    assert {p.name for p in (ROOT / 'nbs').glob('*.ipynb')} <= {p.name for p in proc.glob('*.ipynb')}
    assert (proc / '_quarto.yml').exists() and (proc / 'sidebar.yml').exists()


def test_site_has_every_page(site):
    out, run = site
    pages = {str(p.relative_to(out)) for p in out.rglob('*.html')}
    names = {'index.html', 'dicom.html', 'report.html', 'ledger.html', 'benchmarks.html', 'paper/evaluate.html',
             'paper/explain.html', 'paper/report.html', 'workshop/explorers.html'}
    assert names <= pages, names - pages
    assert len(pages) >= len(list((ROOT / 'nbs').rglob('[0-9]*.ipynb'))) + 4
    for p in out.rglob('*.html'):
        text = p.read_text()
        assert str(run) not in text and str(ROOT) not in text, f'{p.name} shows a machine path'
        assert not re.search(r'/(tmp|work|home|root|Users)/', text), f'{p.name} shows a path of the machine that built it'
        assert 'skip_exec' not in text and 'cdn.plot.ly' not in text, p.name
    name = (run / 'NAME').read_text().strip() if (run / 'NAME').is_file() else run.name
    assert f'runs/{name}' in (out / 'paper' / 'evaluate.html').read_text()
    assert 'href="evaluate.html"' in (out / 'paper' / 'report.html').read_text()     # the report's link to its notebook
    assert 'show_doc' not in (out / 'dicom.html').read_text()          # show_doc's input hidden, its output shown
    assert '<h3 id="read_dicom"' in (out / 'dicom.html').read_text()
    ids = {p: set(re.findall(r'\sid="([^"]+)"', p.read_text())) for p in out.rglob('*.html')}
    broken = []
    for p in ids:                                                   # every link to a place in a page lands on an id there
        for href in re.findall(r'href="([^"#]*)#([^"]+)"', p.read_text()):
            target = (p.parent / href[0]).resolve() if href[0] else p
            if target in ids and href[1] not in ids[target]: broken.append(f'{p.relative_to(out)}: #{href[1]} in {href[0] or "itself"}')
    assert not broken, broken[:20]


def test_notebooks_are_lean():
    "Every library notebook stays under its size budget, saves no widget state, and no warnings, errors or paths of this machine."
    for p in sorted((ROOT / 'nbs').glob('*.ipynb')) + sorted((ROOT / 'nbs' / 'paper').glob('*.ipynb')):
        assert p.stat().st_size < NOTEBOOK_BUDGET_KB * 1024, f'{p.name}: {p.stat().st_size // 1024} kB over {NOTEBOOK_BUDGET_KB} kB'
        nb = json.loads(p.read_text())
        assert 'widgets' not in nb['metadata'], f'{p.name} saves widget state'
        for c in nb['cells']:
            for o in c.get('outputs', []):
                assert o.get('name') != 'stderr' and o['output_type'] != 'error', f"{p.name}: a stored warning or error: {''.join(o.get('text', ''))[:200]}"
                text = ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in o.get('data', {}).items() if k.startswith('text/'))
                assert not re.search(r'/(tmp|work|home|root|Users)/', text), f"{p.name}: a path of the machine that ran it: {text[:200]}"
                for k, v in o.get('data', {}).items():
                    if k.startswith('image/'): assert len(v) < 400_000, f'{p.name}: one {k} of {len(v) // 1000} kB'


def test_licensed_pictures_are_drawn_at_build_time_only(site):
    "Cells marked `#| build-time: true` (real CQ500 pictures) store nothing; the site draws them, or says why it could not."
    out, _ = site
    marked = {}
    for p in sorted((ROOT / 'nbs').rglob('*.ipynb')):
        for c in nbformat.read(p, as_version=4).cells:
            if c.cell_type == 'code' and c.source.startswith('#| build-time: true'):
                assert not c.outputs, f'{p.name}: a build-time cell stores its outputs (clear them: they may not be shared)'
                marked.setdefault(p.stem, 0); marked[p.stem] += 1
    assert {'00_dicom', '03_phantom'} <= set(marked), marked
    for page in ('dicom.html', 'phantom.html'):
        text = (out / page).read_text()
        assert 'not drawn here' not in text, f'{page}: a build-time picture failed: ' + text[text.index('not drawn here'):][:300]
    assert (out / 'dicom.html').read_text().count('data:image/png;base64') >= 1           # 00_dicom stores no picture of its own


def test_a_kept_reference_run_is_the_site_s_default(tmp_path):
    "`tools/reference_run.py` keeps a run small and without machine paths; `tools/docs.py` shows it when no runs/ folder does."
    sys.path.insert(0, str(ROOT / 'tools'))
    import docs, reference_run
    kept = ROOT / 'docs' / 'reference_run'
    if not kept.is_dir(): pytest.skip('no reference run is kept in docs/reference_run (tools/reference_run.py RUN keeps one)')
    files = [p for p in kept.rglob('*') if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 4_000_000, 'the kept run is over 4 MB'
    assert {p.name for p in (kept / 'executed').glob('*.ipynb')} == {p.name for p in (ROOT / 'nbs' / 'paper').glob('*.ipynb')}
    for p in files:
        assert not re.search(r'/(tmp|work|home|root|Users)/', p.read_text(errors='replace')), f'{p.name} holds a machine path'
    assert reference_run.PLOTLY_PLACEHOLDER in (kept / 'report.html').read_text()
    name = (kept / 'NAME').read_text().strip()
    assert f'<title>ich_nb: {name}</title>' in (kept / 'report.html').read_text()     # not the folder it was made in
    if not any((ROOT / 'runs' / n / 'executed').is_dir() for n in ('workshop', 'smoke')):
        assert docs.find_run(None) == kept and docs.run_name(kept) == 'workshop'


def test_pages_render_in_a_browser(site):
    "Each page loads in Chromium with no script error; images have pixels, plotly figures draw, internal links exist."
    if not CHROMIUM.exists(): pytest.skip('Debian chromium is not installed (apt-get install chromium; .ci/run does it)')
    pytest.importorskip('playwright')
    from playwright.sync_api import sync_playwright
    out, _ = site
    bad, n_img, n_plotly = [], 0, 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.route('http*://**', lambda route: route.abort())             # offline: nothing from the network
        for f in sorted(out.rglob('*.html')):
            errors.clear()
            page.goto(f.as_uri(), wait_until='load')
            name = str(f.relative_to(out))
            if page.locator('.plotly-graph-div').count():
                page.wait_for_function("[...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('.main-svg'))",
                                       timeout=20_000)
            info = page.evaluate("""() => ({
                imgs: [...document.images].map(i => [i.currentSrc.slice(0, 60), i.complete && i.naturalWidth > 0]),
                plots: [...document.querySelectorAll('.plotly-graph-div')].map(d => d.querySelectorAll('.main-svg .trace').length > 0),
                links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
                title: document.title})""")
            bad += [f'{name}: image {s} has no pixels' for s, ok in info['imgs'] if not ok]
            bad += [f'{name}: plotly figure {i} not drawn' for i, ok in enumerate(info['plots']) if not ok]
            bad += [f'{name}: script error {e}' for e in errors]
            n_img, n_plotly = n_img + len(info['imgs']), n_plotly + len(info['plots'])
            for href in info['links']:
                if href.startswith(('http:', 'https:', 'mailto:', '#', 'data:')): continue
                target = (f.parent / href.split('#')[0]).resolve()
                if not target.is_file(): bad.append(f'{name}: link {href} leads nowhere')
            if name == 'paper/evaluate.html': page.screenshot(path=str(out.parent / 'evaluate.png'), full_page=True)
        browser.close()
    assert not bad, '\n'.join(bad[:30])
    assert n_img >= 10 and n_plotly >= 5, (n_img, n_plotly)
