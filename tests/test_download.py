"data_download.sh against a local HTTP server (with Range support) and a fake kaggle: never the internet."
import http.server, io, os, re, stat, subprocess, threading, zipfile
from pathlib import Path
import pytest

from conftest import ROOT

SCRIPT = ROOT / 'data_download.sh'


class Server(http.server.ThreadingHTTPServer):
    "Serves `files` (name -> bytes) on 127.0.0.1, honours Range requests, and logs what was asked."
    def __init__(self, files):
        self.files, self.log = files, []
        super().__init__(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self): return f'http://127.0.0.1:{self.server_address[1]}'


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name, rng = self.path.lstrip('/'), self.headers.get('Range')
        self.server.log.append((name, rng))
        if name not in self.server.files: return self.send_error(404)
        data, start = self.server.files[name], 0
        if rng:
            start = int(re.match(r'bytes=(\d+)-', rng)[1])
            if start >= len(data): return self.send_error(416)
            self.send_response(206)
            self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
        else: self.send_response(200)
        self.send_header('Content-Length', str(len(data) - start)); self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *a): pass


def make_zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for name, data in entries.items(): z.writestr(name, data)
    return buf.getvalue()


def study_zip(n, size=20_000):
    folder = f'CQ500CT{n} CQ500CT{n}/Unknown Study/CT 5mm'
    return make_zip({f'{folder}/CT00000{k}.dcm': os.urandom(size) for k in range(3)})


@pytest.fixture
def server():
    s = Server({'reads.csv': b'name,Category\nCQ500-CT-0,B1\n', **{f'CQ500-CT-{n}.zip': study_zip(n) for n in range(3)}})
    yield s
    s.shutdown()


def run(dest, *args, env=None, path=None):
    e = {**os.environ, 'CQ500_STUDIES': '0-2', **(env or {})}
    if path: e['PATH'] = f"{path}:{e['PATH']}"
    return subprocess.run(['bash', SCRIPT, '--dest', dest, *args], capture_output=True, text=True, env=e, timeout=120)


def test_cq500_downloads_unpacks_and_a_second_run_fetches_nothing(server, tmp_path):
    tmp_path = tmp_path / 'a folder with spaces'                                # every path quoted
    r = run(tmp_path, '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url))
    assert r.returncode == 0, r.stderr
    assert 'CQ500: 3 studies unpacked now, 0 already there' in r.stdout
    for n in range(3):
        assert len(list((tmp_path / 'cq500' / f'CQ500CT{n} CQ500CT{n}' / 'Unknown Study' / 'CT 5mm').glob('*.dcm'))) == 3
    assert (tmp_path / 'cq500' / 'reads.csv').read_bytes() == server.files['reads.csv']
    server.log.clear()
    r = run(tmp_path, '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url))
    assert r.returncode == 0 and server.log == [] and '0 studies unpacked now, 3 already there' in r.stdout


def test_a_partial_download_continues(server, tmp_path):
    zips = tmp_path / 'cq500' / 'zips'; zips.mkdir(parents=True)
    data = server.files['CQ500-CT-1.zip']
    (zips / 'CQ500-CT-1.zip.part').write_bytes(data[:len(data) // 2])          # as an interrupted run leaves it
    r = run(tmp_path, '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url, CQ500_STUDIES='1'))
    assert r.returncode == 0, r.stderr
    assert ('CQ500-CT-1.zip', f'bytes={len(data) // 2}-') in server.log
    assert (zips / 'CQ500-CT-1.zip').read_bytes() == data


def test_a_corrupt_zip_fails_clearly_and_is_fetched_again(server, tmp_path):
    good = server.files['CQ500-CT-2.zip']
    server.files['CQ500-CT-2.zip'] = good[:-200] + b'\0' * 200
    r = run(tmp_path, '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url))
    assert r.returncode != 0 and 'CQ500-CT-2.zip' in r.stderr and 'Run the same command again' in r.stderr
    server.files['CQ500-CT-2.zip'] = good
    r = run(tmp_path, '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url))
    assert r.returncode == 0 and '1 studies unpacked now, 2 already there' in r.stdout


def test_a_zip_that_writes_outside_dest_is_refused(server, tmp_path):
    server.files['CQ500-CT-0.zip'] = make_zip({'../../escaped.txt': b'gotcha'})
    r = run(tmp_path / 'd', '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url))
    assert r.returncode != 0 and 'outside' in r.stderr and 'delete the zip and run again' in r.stderr   # not "run again" on the same zip
    assert not list(tmp_path.rglob('escaped.txt'))


def test_missing_file_and_bad_arguments(server, tmp_path):
    r = run(tmp_path, '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url, CQ500_STUDIES='7'))
    assert r.returncode != 0 and 'CQ500-CT-7.zip failed' in r.stderr
    assert run(tmp_path, '--only', 'mri').returncode != 0
    r = subprocess.run(['bash', SCRIPT], capture_output=True, text=True)
    assert r.returncode != 0 and '--dest DIR' in r.stderr
    for bad in ('0 x 5', '5-2', '0-999', ' '):                                  # refused before anything is downloaded
        server.log.clear()
        r = run(tmp_path / 'bad', '--only', 'cq500', env=dict(CQ500_BASE_URL=server.url, CQ500_STUDIES=bad))
        assert r.returncode != 0 and 'CQ500_STUDIES' in r.stderr and server.log == [], (bad, r.stderr)


def test_dry_run_touches_nothing(server, tmp_path):
    r = run(tmp_path / 'new', '--dry-run', env=dict(CQ500_BASE_URL=server.url, HOME=str(tmp_path)))
    assert r.returncode == 0 and server.log == [] and not (tmp_path / 'new').exists()
    assert 'would run: kaggle competitions download' in r.stdout and r.stdout.count('would download') == 4


def fake_kaggle(bin_dir: Path, payload: Path):
    "A `kaggle` that writes the competition zip where asked (-p DIR), and records its arguments."
    bin_dir.mkdir()
    k = bin_dir / 'kaggle'
    k.write_text(f'#!/bin/sh\necho "$@" >> "{bin_dir}/calls"\nwhile [ $# -gt 0 ]; do [ "$1" = -p ] && dir=$2; shift; done\n'
                 f'cp "{payload}" "$dir/rsna-intracranial-hemorrhage-detection.zip"\n')
    k.chmod(k.stat().st_mode | stat.S_IEXEC)


def test_rsna_with_a_fake_kaggle(tmp_path):
    payload = tmp_path / 'payload.zip'
    payload.write_bytes(make_zip({'rsna-intracranial-hemorrhage-detection/stage_2_train.csv': 'ID,Label\n',
                                  'rsna-intracranial-hemorrhage-detection/stage_2_train/ID_000000001.dcm': os.urandom(100)}))
    fake_kaggle(tmp_path / 'bin', payload)
    (tmp_path / 'home' / '.kaggle').mkdir(parents=True)
    env = dict(HOME=str(tmp_path / 'home'))
    r = run(tmp_path / 'd', '--only', 'rsna', env=env, path=tmp_path / 'bin')
    assert r.returncode != 0 and 'no Kaggle API token' in r.stderr and 'kaggle.json' in r.stderr
    (tmp_path / 'home' / '.kaggle' / 'kaggle.json').write_text('{"username": "u", "key": "k"}')
    r = run(tmp_path / 'd', '--only', 'rsna', env=env, path=tmp_path / 'bin')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'd' / 'rsna' / 'rsna-intracranial-hemorrhage-detection' / 'stage_2_train.csv').exists()
    assert (tmp_path / 'bin' / 'calls').read_text().split() == ['competitions', 'download', '-c',
                                                               'rsna-intracranial-hemorrhage-detection', '-p', str(tmp_path / 'd' / 'rsna')]
    r = run(tmp_path / 'd', '--only', 'rsna', env=env, path=tmp_path / 'bin')
    assert r.returncode == 0 and 'already unpacked' in r.stdout
    assert len((tmp_path / 'bin' / 'calls').read_text().splitlines()) == 1


def test_rsna_without_the_kaggle_cli(tmp_path):
    env = dict(PATH='/usr/bin:/bin', HOME=str(tmp_path))
    r = subprocess.run(['bash', SCRIPT, '--dest', tmp_path, '--only', 'rsna'], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "pip install kaggle" in r.stderr and 'kaggle.json' in r.stderr
