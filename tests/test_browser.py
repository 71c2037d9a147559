"A real browser: JupyterLab on 127.0.0.1, headless Debian Chromium driven by Playwright, runs the teaching notebook and moves a slider."
import os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

from conftest import ROOT

CHROMIUM = Path('/usr/bin/chromium')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    if not CHROMIUM.exists(): pytest.skip('Debian chromium is not installed (apt-get install chromium; .ci/run does it)')
    pytest.importorskip('playwright')
    (tmp_path / 'work').mkdir()
    shutil.copy(ROOT / 'nbs' / 'workshop' / 'explorers.ipynb', tmp_path / 'work' / 'explorers.ipynb')
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
    yield url
    os.killpg(server.pid, 9); server.wait()


def test_teaching_notebook_slider_changes_the_image(lab, tmp_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        page.goto(f'{lab}/lab/tree/explorers.ipynb')
        page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
        page.wait_for_timeout(5000)                                      # let the kernel start
        page.locator('li.lm-MenuBar-item', has_text='Run').click()
        page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
        level = page.locator('.widget-slider', has_text='level (HU)')
        level.wait_for(timeout=180_000)
        image = page.locator('.widget-image').first
        image.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        image.scroll_into_view_if_needed()
        before = image.screenshot(path=str(tmp_path / 'before.png'))
        handle = level.locator('.noUi-handle')
        handle.focus()
        for _ in range(40): page.keyboard.press('ArrowRight')          # level up by 40 HU
        page.wait_for_timeout(1500)
        after = image.screenshot(path=str(tmp_path / 'after.png'))
        browser.close()
    assert before != after, 'moving the level slider did not change the image'
