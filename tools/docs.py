"""Build the documentation site in _docs/: `nbdev_docs` where quarto is installed; otherwise run every
nbdev step before quarto's (quarto.yml, module index, sidebar, notebooks processed into _proc/) and
render the processed notebooks with nbconvert's HTML exporter, offline, with a sidebar from
nbs/sidebar.yml, the index, the paper series as executed by a reference run, the deviation ledger and
the benchmarks.

    python tools/docs.py [--run runs/workshop] [--out _docs] [--no-proc]

`--run`: a run folder whose executed notebooks (`executed/*.ipynb`) and report.html the site shows
for the paper series (default: the first of runs/workshop, runs/smoke and docs/reference_run — the
kept workshop run, see tools/reference_run.py — that holds them; none: the series is shown
unexecuted, with a note)."""
import argparse, html, json, os, re, shutil, sys, time
from pathlib import Path

import jinja2, nbformat, yaml
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
PLOTLY_CDN = re.compile(r'<script[^>]*>\s*import\s+"https://cdn\.plot\.ly/[^"]+";?\s*</script>|'
                        r'<script[^>]*src="https://cdn\.plot\.ly/[^"]+"[^>]*>\s*</script>')
MATHJAX_CDN = re.compile(r'<script[^>]*src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]+"[^>]*>\s*</script>')
PANDOC_LINK = re.compile(r'\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}')
WIDGET = 'application/vnd.jupyter.widget-view+json'
PLOTLY = 'application/vnd.plotly.v1+json'

# The one template: nbconvert's JupyterLab page with a sidebar, no CDN scripts (the site is read offline).
TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block notebook_css -%}
<link rel="stylesheet" href="{{ resources.site.root }}assets/lab.css">
<style type="text/css">a.anchor-link { display: none; } .jp-InputArea { overflow: hidden; }</style>
{%- endblock notebook_css -%}
{%- block extra_css -%}
<style type="text/css">
body.jp-Notebook { padding: 0; }
nav.site { position: fixed; top: 0; left: 0; bottom: 0; width: 250px; overflow-y: auto; padding: 16px 12px;
  background: #f7f7f9; border-right: 1px solid #ddd; font: 14px/1.45 system-ui, sans-serif; box-sizing: border-box; }
nav.site .home { font-weight: 700; font-size: 17px; display: block; margin-bottom: 10px; }
nav.site ul { list-style: none; padding-left: 0; margin: 0 0 8px; }
nav.site li a { display: block; padding: 2px 6px; border-radius: 4px; color: #24292f; text-decoration: none; }
nav.site li a:hover { background: #e8e8ee; }
nav.site li a.current { background: #dbe6fb; font-weight: 600; }
nav.site .section { margin: 12px 0 4px; font-size: 12px; text-transform: uppercase; color: #666; letter-spacing: .05em; }
main.site { margin-left: 270px; max-width: 1100px; padding: 12px 24px 48px; }
main.site .jp-RenderedMarkdown pre { background: #f5f5f5; padding: 8px 10px; border-radius: 4px; }
main.site .srclink { float: right; font-size: smaller; }
main.site > .jp-Cell:first-child blockquote { border: 0; padding: 0; margin-left: 0; font-size: 1.1em; color: #555; }
main.site .note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; }
main.site table.ledger { width: 100%; table-layout: auto; }
main.site table.ledger td, main.site table.ledger th { text-align: left; vertical-align: top; font-size: 12px; }
</style>
{%- if resources.site.plotly %}<script src="{{ resources.site.root }}assets/plotly.min.js"></script>{% endif -%}
{%- endblock extra_css -%}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<nav class="site">{{ resources.site.sidebar }}</nav>
<main class="site">
{%- endblock body_header -%}
"""


def front_matter(nb) -> dict:
    "The notebook's quarto front matter (its first raw cell between `---` lines); {} when it has none."
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.strip().startswith('---'):
            return yaml.safe_load(c.source.strip().strip('-')) or {}
    return {}


def first_heading(nb) -> str | None:
    "The text of the notebook's first level-1 markdown heading."
    for c in nb.cells:
        m = re.search(r'^# (.+)$', c.source, re.M) if c.cell_type == 'markdown' else None
        if m: return m.group(1).strip()


def title_cell(nb) -> tuple[str | None, str]:
    "The `> ` description of the title cell and the rest of that cell (nbdev's front matter keeps one line of it)."
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.source.startswith('# '):
            body = c.source.split('\n', 1)[1] if '\n' in c.source else ''
            m = re.search(r'^((?:>.*\n?)+)', body, re.M)
            if not m: return None, body.strip()
            desc = ' '.join(l.lstrip('>').strip() for l in m[1].splitlines())
            return desc, (body[:m.start()] + body[m.end():]).strip()
        if c.cell_type != 'raw': break
    return None, ''


def directives(src:str) -> tuple[dict, str]:
    "Quarto/nbdev `#|` lines at the top of a cell as a dict, and the source without them."
    d, lines = {}, src.splitlines()
    while lines and lines[0].startswith('#|'):
        k, _, v = lines.pop(0)[2:].strip().partition(':')
        d[k.strip()] = v.strip() or True
    return d, '\n'.join(lines)


BUILD_TIME = 'build-time'   # `#| build-time: true`: a self-contained cell whose pictures are drawn when the site is built, never stored


def build_time_cells(nb) -> list:
    "The code cells of `nb` marked `#| build-time: true`."
    return [c for c in nb.cells if c.cell_type == 'code' and directives(c.source)[0].get(BUILD_TIME)]


def render_build_time(nb, cwd:Path) -> int:
    "Run `nb`'s build-time cells, in order, in one fresh kernel in `cwd`, and keep their outputs there; a cell that fails says why."
    cells = build_time_cells(nb)
    if not cells: return 0
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    run = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(directives(c.source)[1]) for c in cells])
    run.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    try: NotebookClient(run, timeout=300, resources={'metadata': {'path': str(cwd)}}, allow_errors=True).execute()
    except CellExecutionError: pass
    for c, done in zip(cells, run.cells):
        err = [o for o in done.outputs if o.output_type == 'error']
        c.outputs = [o for o in done.outputs if o.output_type != 'error' and not (o.output_type == 'stream' and o.name == 'stderr')]
        if err: c.outputs = [nbformat.v4.new_output('display_data', data={'text/html':
            f'<p class="note">Drawn when the site is built, from data on the building machine; not drawn here '
            f'({html.escape(err[0].ename)}: {html.escape(err[0].evalue)}).</p>'})]
    return len(cells)


def plotly_html(fig:dict, i:int) -> str:
    "A div and the script that draws a stored plotly figure with the site's own plotly.js."
    return (f'<div id="plotly-{i}" class="plotly-graph-div" style="height:{fig.get("layout", {}).get("height", 480)}px"></div>'
            f'<script>Plotly.newPlot("plotly-{i}", {json.dumps(fig.get("data", []))}, {json.dumps(fig.get("layout", {}))});</script>')


def clean_output(o, i:int, subs:dict) -> bool:
    "Make one output readable offline; returns whether it draws with plotly."
    data, uses = o.get('data', {}), False
    if PLOTLY in data and 'text/html' not in data:
        data['text/html'] = plotly_html(data.pop(PLOTLY), i)
    if 'text/html' in data:
        h = MATHJAX_CDN.sub('', PLOTLY_CDN.sub('', data['text/html']))
        data['text/html'], uses = h, 'Plotly.' in h
    if WIDGET in data:
        data.pop(WIDGET)
        if not any(k.startswith('image/') for k in data):
            data.clear(); data['text/html'] = '<p class="note">An interactive widget: run the notebook in Jupyter to use it.</p>'
    if 'text/markdown' in data:
        data['text/markdown'] = PANDOC_LINK.sub(
            lambda m: f'<div class="srclink"><a href="{m[2]}" target="_blank">{m[1]}</a></div>\n', data['text/markdown'])
    for k, v in list(data.items()):
        if isinstance(v, str):
            for a, b in subs.items(): v = v.replace(a, b)
            data[k] = v
    if o.get('output_type') == 'stream':
        for a, b in subs.items(): o['text'] = o['text'].replace(a, b)
    return uses


def prepare(nb, title:str, description:str|None, subs:dict, note:str|None=None) -> bool:
    "Turn a processed notebook into a page: front matter as a heading, quarto directives applied, outputs made offline."
    nb.metadata.pop('widgets', None)
    nb.metadata['title'] = title
    cells, uses, i = [], False, 0
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.strip().startswith('---'): continue
        if c.cell_type == 'markdown' and c.source.startswith('# ') and not cells:      # an unprocessed notebook's title
            c.source = re.sub(r'^# .*\n*(^>.*\n?)*', '', c.source, flags=re.M)
            if not c.source.strip(): continue
        if c.cell_type == 'code':
            d, c.source = directives(c.source)
            if d.get('hide') or d.get('include') == 'false' or d.get('export') or 'skip' in d: continue
            if d.get('echo') == 'false': c.metadata.setdefault('tags', []).append('remove_input')
            if d.get('output') == 'false': c.outputs = []
            for a, b in subs.items(): c.source = c.source.replace(a, b)
            if 'injected-parameters' in c.metadata.get('tags', []) and not c.source.strip(): continue
            for o in c.outputs:
                i += 1; uses |= clean_output(o, i, subs)
        cells.append(c)
    head = f'# {title}' + (f'\n\n> {description}' if description else '')
    if note: head += f'\n\n<p class="note">{note}</p>'
    nb.cells = [nbformat.v4.new_markdown_cell(head)] + cells
    return uses


def sidebar_entries(path:Path) -> list:
    "nbs/sidebar.yml as [(section or None, [notebook path relative to nbs])]."
    contents = yaml.safe_load(path.read_text())['website']['sidebar']['contents']
    out, top = [], []
    for e in contents:
        if isinstance(e, str): top.append(e)
        else: out.append((e.get('section'), [x if isinstance(x, str) else x['href'] for x in e.get('contents', [])]))
    return [(None, top)] + out


def relative(target:str, page:str) -> str:
    "The href of site path `target` from the page at site path `page` ('' for the site's root)."
    return os.path.relpath(target, os.path.dirname(page) or '.').replace(os.sep, '/') if target else '../' * page.count('/')


def sidebar_html(groups, titles:dict, page:str) -> str:
    "The sidebar of one page: the groups of (site path) links, the current page marked."
    parts = [f'<a class="home" href="{relative("index.html", page)}">{html.escape(titles.get("index.html", "Home"))}</a>']
    for section, paths in groups:
        if section: parts.append(f'<div class="section">{html.escape(section)}</div>')
        parts.append('<ul>' + ''.join(
            f'<li><a href="{relative(p, page)}"{" class=current" if p == page else ""}>{html.escape(titles[p])}</a></li>'
            for p in paths if p != 'index.html') + '</ul>')
    return '\n'.join(parts)


def rewrite_links(page_html:str, page:str, out_of:dict, doc_url:str) -> str:
    "Links to the docs host, to notebooks and to markdown files of the repo become relative links into the site."
    def fix(m):
        attr, url = m[1], m[2]
        if url.startswith(doc_url): return f'{attr}="{relative(url[len(doc_url):], page)}"'
        if re.match(r'[a-z]+:|#|/', url): return m[0]
        path, _, frag = url.partition('#')
        src = str((Path(page).parent / path)).replace('\\', '/')
        src = re.sub(r'(^|/)[^/]+/\.\./', r'\1', src)
        if src in out_of: return f'{attr}="{relative(out_of[src], page)}{"#" + frag if frag else ""}"'
        return m[0]
    return re.sub(r'(href)="([^"]*)"', fix, page_html)


def github_slug(text:str) -> str:
    "A heading's anchor as GitHub and quarto make it: lower case, punctuation dropped, spaces as hyphens."
    return re.sub(r'[^\w\- ]', '', html.unescape(text).lower()).strip().replace(' ', '-')


def anchor_aliases(page_html:str) -> str:
    "Each heading and definition id also under the anchor GitHub and quarto would give it, so `#configerror` and `#the-readmes-…` land."
    have = set(re.findall(r'\sid="([^"]+)"', page_html))
    def alias(m):
        new = [a for a in dict.fromkeys((m[2].lower(), github_slug(m[2].replace('-', ' ')))) if a and a not in have]
        have.update(new)
        return ''.join(f'<span id="{html.escape(a)}"></span>' for a in new) + m[0]
    return re.sub(r'(<h[1-6][^>]*\sid="([^"]+)")', alias, page_html)


REFERENCE = ROOT / 'docs' / 'reference_run'     # a workshop run's series and report, kept by tools/reference_run.py


def find_run(arg):
    "The reference run folder: the one given, else the first of runs/workshop, runs/smoke, docs/reference_run with executed notebooks."
    if arg: return Path(arg) if str(arg).lower() != 'none' else None
    return next((p for p in (ROOT / 'runs' / 'workshop', ROOT / 'runs' / 'smoke', REFERENCE) if (p / 'executed').is_dir()), None)


def run_name(run:Path) -> str:
    "How the site names a reference run: runs/<name>."
    return (run / 'NAME').read_text().strip() if (run / 'NAME').is_file() else run.name


def extra_page(title:str, markdown:str, html_table:str|None=None):
    "A page that is not a notebook (ledger, benchmarks) as a notebook, so the same exporter renders it."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(markdown)]
    if html_table:
        c = nbformat.v4.new_code_cell('', metadata={'tags': ['remove_input']})
        c.outputs = [nbformat.v4.new_output('display_data', data={'text/html': html_table})]
        nb.cells.append(c)
    nb.metadata['title'] = title
    return nb


def build_site(proc:Path, out:Path, run:Path|None, doc_url:str) -> list:
    "Render every notebook of the sidebar (from `proc`), the ledger and the benchmarks into `out`; returns the pages."
    groups = sidebar_entries(proc / 'sidebar.yml')
    srcs = [p for _, ps in groups for p in ps]
    srcs += sorted(str(p.relative_to(proc)) for p in proc.rglob('*.ipynb') if str(p.relative_to(proc)) not in srcs
                   and not p.name.startswith('_') and '.ipynb_checkpoints' not in p.parts)
    executed = {f'paper/{p.name}': p for p in (run / 'executed').glob('*.ipynb')} if run else {}
    nbs, out_of, titles = {}, {}, {}
    for s in srcs:
        nb = nbformat.read(executed.get(s, proc / s), as_version=4)
        if s not in executed: render_build_time(nb, ROOT / 'nbs' / Path(s).parent)
        fm = front_matter(nbformat.read(proc / s, as_version=4)) if s in executed else front_matter(nb)
        desc, rest = title_cell(nbformat.read(ROOT / 'nbs' / s, as_version=4)) if (ROOT / 'nbs' / s).exists() else (None, '')
        fm['description'] = desc or fm.get('description')
        if rest and s not in executed: nb.cells.insert(0, nbformat.v4.new_markdown_cell(rest))
        name = fm.get('output-file') or Path(s).with_suffix('.html').name
        page = str(Path(s).parent / name).removeprefix('./')
        nbs[s], out_of[s], titles[page] = (nb, fm, page), page, fm.get('title') or first_heading(nb) or Path(s).stem
    extras = {'ledger.html': 'Deviation ledger', 'benchmarks.html': 'Benchmarks'}
    groups = [(sec, [out_of[p] for p in ps if p in out_of]) for sec, ps in groups]
    groups.append(('results', (['paper/report.html'] if run and (run / 'report.html').exists() else []) + list(extras)))
    titles |= extras | {'paper/report.html': f'Report of the reference run ({run_name(run)})' if run else ''}
    out_of |= {'BENCHMARKS.md': 'benchmarks.html', '../BENCHMARKS.md': 'benchmarks.html'}
    out_of |= {f'paper/executed_html/{Path(s).stem}.html': p for s, p in list(out_of.items()) if s.startswith('paper/')}
    cfg = Config({'TagRemovePreprocessor': {'enabled': True, 'remove_input_tags': {'remove_input'}}})
    exporter = HTMLExporter(config=cfg, template_name='lab', template_file='site.html.j2', embed_images=True,
                            exclude_input_prompt=True, exclude_output_prompt=True,
                            extra_loaders=[jinja2.DictLoader({'site.html.j2': TEMPLATE})])
    exporter.register_preprocessor(TagRemovePreprocessor(config=cfg), enabled=True)
    subs = {str(run.resolve()): f'runs/{run_name(run)}', str(run): f'runs/{run_name(run)}'} if run else {}
    subs[str(ROOT) + '/'] = ''
    if out.exists(): shutil.rmtree(out)
    (out / 'assets').mkdir(parents=True)
    static = next(Path(d) / 'lab' / 'static' for d in exporter.template_paths if (Path(d) / 'lab' / 'static' / 'index.css').exists())
    (out / 'assets' / 'lab.css').write_text((static / 'index.css').read_text() + (static / 'theme-light.css').read_text())
    import plotly
    shutil.copy(Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js', out / 'assets' / 'plotly.min.js')
    pages = []
    def write(nb, page, src_dir, uses_plotly):
        res = {'metadata': {'name': titles[page], 'path': str(src_dir)},
               'site': {'sidebar': sidebar_html(groups, titles, page), 'root': relative('', page), 'plotly': uses_plotly}}
        body, _ = exporter.from_notebook_node(nb, resources=res)
        (out / page).parent.mkdir(parents=True, exist_ok=True)
        (out / page).write_text(anchor_aliases(rewrite_links(body, page, out_of, doc_url)))
        pages.append(page)
    for s, (nb, fm, page) in nbs.items():
        note = None
        if s.startswith('paper/'):
            note = (f'Executed by the reference run <code>runs/{run_name(run)}</code> (its report: <a href="report.html">report.html</a>).' if s in executed else
                    'Not executed for this site: build it with <code>make docs DOCS_RUN=runs/workshop</code> after '
                    '<code>ich-nb reproduce --profile workshop --run-dir runs/workshop</code> to see the results.')
        uses = prepare(nb, titles[page], fm.get('description'), subs, note)
        write(nb, page, (proc / s).parent, uses)
    sys.path.insert(0, str(ROOT))
    from ich_nb.report import ledger
    lg = ledger().to_html(index=False, border=0, classes='ledger', na_rep='')
    write(extra_page(extras['ledger.html'], '# Deviation ledger\n\nEvery place where the paper, the authors\' code and '
                     '`ich-nb reproduce --profile paper` differ (from `ich_nb/paper/deviations.yaml`).', lg),
          'ledger.html', ROOT, False)
    write(extra_page(extras['benchmarks.html'], (ROOT / 'BENCHMARKS.md').read_text()), 'benchmarks.html', ROOT, False)
    if run and (run / 'report.html').exists():
        report = (run / 'report.html').read_text().replace('<script src="PLOTLY_JS"></script>', '<script src="../assets/plotly.min.js"></script>')
        (out / 'paper' / 'report.html').write_text(rewrite_links(report, 'paper/report.html', out_of, doc_url))
        pages.append('paper/report.html')
    (out / '.nojekyll').touch()
    return pages


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run', default=None, help="reference run folder for the paper series ('none': unexecuted)")
    ap.add_argument('--out', default=None, help='output folder (default: _docs)')
    ap.add_argument('--no-proc', action='store_true', help='reuse _proc/ as it is')
    a = ap.parse_args()
    os.chdir(ROOT)
    from nbdev.config import get_config
    from nbdev.doclinks import _build_modidx
    from nbdev.quarto import nbdev_docs, nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs
    if shutil.which('quarto'):
        nbdev_docs.__wrapped__()
        sys.exit(0)
    cfg, t0 = get_config(), time.time()
    if not a.no_proc:
        refresh_quarto_yml()
        _build_modidx()
        nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
        proc_nbs(cfg.nbs_path, n_workers=0)
    out = Path(a.out) if a.out else cfg.config_path / cfg.doc_path
    t1 = time.time()
    pages = build_site(cfg.config_path / '_proc', out, find_run(a.run), f'{cfg.doc_host}{cfg.doc_baseurl}'.rstrip('/') + '/')
    print(f'quarto is not installed: notebooks processed into _proc/ in {t1 - t0:.0f} s, then {len(pages)} pages rendered '
          f'with nbconvert into {out} in {time.time() - t1:.0f} s; open {out / "index.html"}. '
          '(With quarto installed, `make docs` runs nbdev_docs.)')
