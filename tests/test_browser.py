"""A real browser, as a workshop participant meets the explorers: JupyterLab on 127.0.0.1, headless Debian Chromium
driven by Playwright, Run All on a copy of the workshop notebook, then the mouse and the keyboard. It checks what the
eye sees: every picture square, at least 256 px, drawn at its own size; a drag moves a slider by a few HU; a preset
clicked after a drag brings its picture back; no "yes" beside a p under its threshold. Screenshots are kept in
$ICH_NB_ARTEFACTS (default: the test's tmp folder).

The heatmap explorer needs a finished run: runs/smoke, or the folders in $ICH_NB_TEST_RUNS (':'-separated, e.g. a
smoke run and one at 128 px)."""
import os, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

from conftest import ROOT
from ich_nb.widgets import SIDE, workshop_copy
from test_widgets import finished_runs

CHROMIUM = Path('/usr/bin/chromium')
RUNS = finished_runs()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def artefacts(tmp_path, name) -> Path:
    d = Path(os.environ.get('ICH_NB_ARTEFACTS', tmp_path)) / name
    d.mkdir(parents=True, exist_ok=True); return d


@pytest.fixture
def lab(tmp_path, request):
    "JupyterLab on a participant's copy of the workshop notebook (made by `workshop_copy`, as `ich-nb workshop` does), set to `request.param`."
    if not CHROMIUM.exists(): pytest.skip('Debian chromium is not installed (apt-get install chromium; .ci/run does it)')
    pytest.importorskip('playwright')
    run = request.param or tmp_path / 'no_run'
    workshop_copy(run, dest=tmp_path / 'work')
    port = free_port()
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(tmp_path / 'cfg'), 'JUPYTER_DATA_DIR': str(tmp_path / 'data'),
           'JUPYTER_RUNTIME_DIR': str(tmp_path / 'rt'), 'IN_TEST': '1'}
    server = subprocess.Popen([Path(sys.executable).parent / 'jupyter', 'lab', '--no-browser', '--allow-root', f'--port={port}',
                               '--ServerApp.ip=127.0.0.1', "--IdentityProvider.token=''", '--ServerApp.password=',
                               f'--ServerApp.root_dir={tmp_path / "work"}'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try: urllib.request.urlopen(f'{url}/api/status', timeout=1); break
        except OSError: time.sleep(0.5)
    else:
        server.kill(); pytest.fail('JupyterLab did not start')
    yield url, request.param
    os.killpg(server.pid, 9); server.wait()


def geometry(image) -> dict:
    "The picture as drawn: its natural size (the PNG's pixels) and the box it fills on screen."
    image.scroll_into_view_if_needed()
    n = image.evaluate("e => { const r = e.getBoundingClientRect(); return [e.naturalWidth, e.naturalHeight, r.width, r.height, r.x, r.y]; }")
    return dict(zip(('natural_w', 'natural_h', 'w', 'h', 'x', 'y'), n))


def assert_square(g, name):
    assert abs(g['w'] - g['h']) <= 2, f"{name} is drawn {g['w']:.0f} x {g['h']:.0f} px: not square"
    assert g['w'] >= 256, f"{name} is drawn {g['w']:.0f} px wide: too small to read"
    assert abs(g['w'] - g['natural_w']) <= 3 and abs(g['h'] - g['natural_h']) <= 3, \
        f"{name}: a {g['natural_w']} x {g['natural_h']} picture drawn at {g['w']:.0f} x {g['h']:.0f}: stretched"


def slider(page, description, explorer='window'):
    return page.locator(f'.ich-{explorer}-explorer .widget-slider', has_text=description).first


def slider_value(page, description) -> int:
    return int(slider(page, description).locator('.widget-readout').first.inner_text())


def drag(page, description, dx):
    "Drag the handle of the window explorer's slider labelled `description` by `dx` px with the mouse."
    handle = slider(page, description).locator('.noUi-handle').first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    x, y = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
    page.mouse.move(x, y); page.mouse.down()
    for i in range(1, 11): page.mouse.move(x + dx * i / 10, y)
    page.mouse.up(); page.wait_for_timeout(800)


def picture(page, name) -> bytes:
    im = page.locator(f'.ich-{name}').first
    im.scroll_into_view_if_needed()
    return im.screenshot()


def open_and_run(page, lab):
    page.goto(f'{lab}/lab/tree/explorers.ipynb')
    page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
    page.wait_for_timeout(5000)                                      # let the kernel start
    page.locator('li.lm-MenuBar-item', has_text='Run').click()
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
    page.locator('.ich-window').first.wait_for(timeout=180_000)
    idle(page)


def idle(page, timeout=300_000):
    "Wait until no cell is running ([*]) and the kernel is idle: widgets answer a drag only then."
    page.wait_for_function("""() => ![...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'))
                              && document.body.innerText.includes('| Idle')""", timeout=timeout, polling=500)
    page.wait_for_timeout(1000)


def check_window_explorer(page, out: Path) -> dict:
    seen = {}
    for name in ('window', 'wdw', 'slc'):
        seen[name] = g = geometry(page.locator(f'.ich-{name}').first)
        assert_square(g, f'the {name} picture')
    assert max(g['y'] for g in seen.values()) - min(g['y'] for g in seen.values()) <= 2, 'the three pictures are not level'
    hist = geometry(page.locator('.ich-histogram').first)
    row = seen['slc']['x'] + seen['slc']['w'] - seen['window']['x']
    assert abs(hist['w'] - row) <= 4, f"the histogram is {hist['w']:.0f} px wide, the row of pictures {row:.0f}"
    assert abs(hist['w'] - hist['natural_w']) <= 3 and abs(hist['h'] - hist['natural_h']) <= 3, 'the histogram is stretched'
    page.locator('.ich-window').first.scroll_into_view_if_needed()
    page.screenshot(path=str(out / 'window_explorer.png'))

    preset = page.locator('.ich-window-explorer .widget-toggle-buttons button', has_text='subdural').first
    preset.click(); page.wait_for_timeout(800)
    assert (slider_value(page, 'level (HU)'), slider_value(page, 'width (HU)')) == (80, 200)
    subdural = picture(page, 'window')
    level = slider_value(page, 'level (HU)')
    drag(page, 'level (HU)', 60)                                     # the 60 px drag
    moved = slider_value(page, 'level (HU)') - level
    assert 0 < moved <= 40, f'a 60 px drag moved the level by {moved} HU'
    assert 'mod-active' not in (preset.get_attribute('class') or ''), 'the preset stays highlighted after a drag'
    assert picture(page, 'window') != subdural
    preset.click(); page.wait_for_timeout(800)                       # the same preset again: applied again
    assert slider_value(page, 'level (HU)') == 80 and picture(page, 'window') == subdural

    page.locator('.ich-window-explorer .widget-toggle-buttons button', has_text='brain').first.click(); page.wait_for_timeout(800)
    width = slider(page, 'width (HU)').locator('.noUi-base').first.bounding_box()['width']
    drag(page, 'width (HU)', 120 / 499 * width)                      # the exercise: width 80 -> 200 by dragging
    got = slider_value(page, 'width (HU)')
    assert abs(got - 200) <= 5, f'dragging the width towards 200 HU reached {got}'
    seen['moved_60px'], seen['width_drag'] = moved, got
    seen['redraw_s'] = redraw_seconds(page, 'window', lambda: page.keyboard.press('ArrowRight'), 'width (HU)')
    assert seen['redraw_s'] < 1, f"a 1 HU step takes {seen['redraw_s']:.2f} s to show"
    return seen


def redraw_seconds(page, name, act, focus=None, explorer='window', n=7) -> float:
    "Median seconds from `act` (a key press) until picture `name` shows something new in the browser."
    if focus: slider(page, focus, explorer).locator('.noUi-handle').first.focus()
    times = []
    for _ in range(n):
        src = page.locator(f'.ich-{name}').first.get_attribute('src')
        t = time.perf_counter(); act()
        page.wait_for_function('([sel, src]) => document.querySelector(sel).getAttribute("src") !== src', arg=[f'.ich-{name}', src], timeout=30_000)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def check_heatmap_explorer(page, out: Path) -> dict:
    page.locator('.ich-heatmap').first.wait_for(timeout=180_000)
    page.wait_for_timeout(1500)
    seen = {}
    for name in ('slice', 'heatmap'):
        seen[name] = g = geometry(page.locator(f'.ich-{name}').first)
        assert_square(g, f'the {name} picture')
    assert abs(seen['slice']['w'] - seen['heatmap']['w']) <= 1 and abs(seen['slice']['y'] - seen['heatmap']['y']) <= 2, 'slice and heatmap not side by side'
    rows = page.locator('table.ich-calls tr[data-class]')
    assert rows.count() == 6
    for i in range(rows.count()):
        cls, p, t, call = (rows.nth(i).locator('td').nth(j).inner_text() for j in range(4))
        if t == '—': assert call.startswith('no threshold'), f'{cls}: no threshold, yet called {call!r}'
        elif call.startswith('yes'): assert float(p) >= float(t), f'{cls}: called yes at p {p} under its threshold {t}'
        else: assert call.startswith('no') and float(p) < float(t), f'{cls}: called {call!r} at p {p}, threshold {t}'
    page.locator('.ich-heatmap').first.scroll_into_view_if_needed()
    page.screenshot(path=str(out / 'heatmap_explorer.png'))
    seen['slice_step_s'] = redraw_seconds(page, 'heatmap', lambda: page.keyboard.press('ArrowLeft'), 'slice', 'heatmap', n=3)
    wrong = page.locator('.ich-heatmap-explorer .widget-dropdown', has_text='wrong calls').locator('select').first
    options = [o.replace('\xa0', ' ') for o in wrong.locator('option').all_inner_texts()]
    seen['wrong_calls_listed'] = len(options) - 1
    if len(options) > 1:                                             # the first wrong call: its study, class and slice
        src = page.locator('.ich-heatmap').first.get_attribute('src')
        t = time.perf_counter()
        wrong.select_option(index=1)
        page.wait_for_function('src => document.querySelector(".ich-heatmap").getAttribute("src") !== src', arg=src, timeout=120_000)
        seen['wrong_call_s'] = time.perf_counter() - t
        idle(page)
        cls = options[1].split(' FN ')[0].split(' FP ')[0]
        assert page.locator('.ich-heatmap-explorer .widget-html', has_text=f'Grad-CAM, {cls}:').count() == 1
        name = options[1].rsplit(', ', 1)[-1]
        study = page.locator('.ich-heatmap-explorer .widget-dropdown', has_text='study').locator('select').first
        assert study.evaluate('e => e.options[e.selectedIndex].text').replace('\xa0', ' ').endswith(name)
        page.locator('.ich-heatmap').first.scroll_into_view_if_needed()
        page.screenshot(path=str(out / 'wrong_call.png'))
    return seen


@pytest.mark.parametrize('lab', RUNS or [None], indirect=True, ids=lambda r: r.name if r else 'no-run')
def test_the_explorers_as_a_participant_sees_them(lab, tmp_path, request):
    from playwright.sync_api import sync_playwright
    url, run = lab
    out = artefacts(tmp_path, request.node.callspec.id)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        try:
            open_and_run(page, url)
            print('window explorer:', check_window_explorer(page, out))
            if run is not None: print('heatmap explorer:', check_heatmap_explorer(page, out))
        finally:
            page.screenshot(path=str(out / 'last.png'), full_page=True)
            browser.close()
    print('screenshots:', out)
