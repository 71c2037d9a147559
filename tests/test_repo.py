"The repository's promises: the README's two commands, README in step with nbs/index.ipynb, the docs build, the CLI, no unsafe loading."
import re, subprocess, sys
from pathlib import Path

import ich_nb
from conftest import ROOT

BIN = Path(sys.executable).parent


def test_readme_starts_with_the_two_commands():
    head = (ROOT / 'README.md').read_text().splitlines()[:6]
    assert head[0] == '# ich_nb'
    assert any(l.startswith('make reproduce') for l in head) and any(l.startswith('make test') for l in head)
    assert 'make test' in (ROOT / '.ci' / 'run').read_text()


def test_readme_is_made_from_index(tmp_path):
    subprocess.run([BIN / 'jupyter', 'nbconvert', '--to', 'markdown', ROOT / 'nbs' / 'index.ipynb',
                    '--output-dir', tmp_path, '--output', 'README', '--log-level', 'WARN'], check=True)
    assert (tmp_path / 'README.md').read_text() == (ROOT / 'README.md').read_text(), \
        "README.md is out of step with nbs/index.ipynb: run `make readme`"
    for png in (tmp_path / 'README_files').iterdir():
        assert png.read_bytes() == (ROOT / 'README_files' / png.name).read_bytes()


def test_cli_version_and_help():
    r = subprocess.run([BIN / 'ich-nb', '--version'], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == f'ich_nb {ich_nb.__version__}'
    r = subprocess.run([BIN / 'ich-nb', '--help'], capture_output=True, text=True, check=True)
    assert r.stdout.startswith('usage: ich-nb') and 'Yeo et al.' in r.stdout


def test_nothing_a_user_hands_in_is_unpickled_or_evaluated():
    "No pickle, no torch.load without weights_only=True, no allow_pickle=True, no eval of a string, in the package or the series."
    sources = list((ROOT / 'ich_nb').glob('*.py')) + list((ROOT / 'nbs' / 'paper').glob('*.ipynb')) + list((ROOT / 'nbs' / 'workshop').glob('*.ipynb'))
    assert len(sources) > 15
    for f in sources:
        text = f.read_text()
        assert not re.search(r'\bpickle\b|allow_pickle=True|literal_eval|(?<![.\w])eval\(|\bexec\(', text), f
        for call in re.findall(r'torch\.load\([^\n]*', text): assert 'weights_only=True' in call, (f, call)


def test_the_package_sets_nothing_global():
    "No module sets environment variables or pydicom's settings for the process: they belong to the program that imports it."
    for f in (ROOT / 'ich_nb').glob('*.py'):
        src = f.read_text()
        assert not re.search(r"os\.environ\[[^]]+\]\s*=|os\.environ\.(update|setdefault)|os\.putenv", src), f.name
        assert not re.search(r"pydicom\.config\.settings\.\w+\s*=", src), f.name


def test_the_ledger_names_real_switches_that_the_paper_profile_holds():
    "Every switch of the deviation ledger is a profile parameter, and the paper profile's value is the ledger's."
    import yaml
    from ich_nb.report import ledger
    from ich_nb.run import SCHEMA, profile_file
    paper = yaml.safe_load(profile_file('paper').read_text())
    rows = ledger()
    assert len(rows) >= 15 and rows.item.is_unique and rows[['item', 'paper', 'code', 'ich_nb', 'why']].notna().all().all()
    switched = rows[rows.switch.notna()]
    assert {'data.test_series', 'image.crop', 'image.normalise', 'cnn.augment', 'cnn.keep', 'rnn.ensemble', 'eval.ci'} <= set(switched.switch)
    for row in switched.itertuples():
        schema, value = SCHEMA, paper
        for k in row.switch.split('.'): schema, value = schema[k], value[k]     # a KeyError names a switch that is not a parameter
        assert value == row.paper_profile, (row.switch, value, row.paper_profile)
