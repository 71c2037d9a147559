"ich_nb.report renders every figure and table from a synthetic prediction table, with the stats functions' numbers."
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ich_nb.labels import CLASSES
from ich_nb.run import MODELS
from ich_nb.report import fig1, fig2, synthetic_predictions, table2, table_s3, table_s4, write_report
from ich_nb.stats import auc_ci, delong_test, mcnemar_test, operating_points, threshold_metrics


@pytest.fixture(scope='module')
def preds():
    return synthetic_predictions(n_valid=250, n_test=250, seed=3)


def test_table_s3_is_the_stats(preds):
    s3 = table_s3(preds)
    assert len(s3) == len(MODELS) * len(CLASSES)
    t = preds[preds.split == 'test']
    for m in ('CNN', 'CNNens-RNN'):
        d = t[t.model == m]
        for c in CLASSES:
            row = s3[(s3.model == m) & (s3.cls == c)].iloc[0]
            assert np.allclose([row.auc, row.auc_lower, row.auc_upper], auc_ci(d[c], d[f'p_{c}']), rtol=1e-12)
            assert np.isclose(row.auc, roc_auc_score(d[c], d[f'p_{c}']), rtol=1e-12)
            assert np.isclose(row.auc_pr, average_precision_score(d[c], d[f'p_{c}']), rtol=1e-12)


def test_table2_uses_validation_thresholds_on_test(preds):
    t2 = table2(preds, 'CNNwdw')
    assert len(t2) == 2 * len(CLASSES)
    v = preds[(preds.split == 'valid') & (preds.model == 'CNNwdw')]
    t = preds[(preds.split == 'test') & (preds.model == 'CNNwdw')]
    for c in CLASSES:
        ops = operating_points(v[c], v[f'p_{c}'])
        for name, thr in ops.items():
            row = t2[(t2.cls == c) & (t2.operating_point == name)].iloc[0]
            want = threshold_metrics(t[c], t[f'p_{c}'], thr)
            assert all(np.isclose(row[k], want[k], equal_nan=True) for k in want)


def test_table_s4_is_delong_and_mcnemar(preds):
    s4 = table_s4(preds)
    assert len(s4) == len(MODELS) * (len(MODELS) - 1) // 2
    t = preds[preds.split == 'test'].sort_values('study_id')
    v = preds[preds.split == 'valid']
    a, b = t[t.model == 'CNN'], t[t.model == 'CNNslc']
    row = s4[(s4.model_a == 'CNN') & (s4.model_b == 'CNNslc')].iloc[0]
    assert np.isclose(row.delong_p, delong_test(a['any'], a.p_any, b.p_any).p, rtol=1e-12)
    thr = {m: operating_points(v[v.model == m]['any'], v[v.model == m].p_any)['balanced'] for m in ('CNN', 'CNNslc')}
    mc = mcnemar_test((a.p_any >= thr['CNN']).to_numpy() == a['any'].astype(bool).to_numpy(),
                      (b.p_any >= thr['CNNslc']).to_numpy() == b['any'].astype(bool).to_numpy())
    assert (row.mcnemar_b, row.mcnemar_c) == (mc.b, mc.c) and np.isclose(row.mcnemar_p, mc.p, rtol=1e-12)


def test_figures_and_report(preds, tmp_path):
    f1 = fig1(table_s3(preds))
    assert [t.name for t in f1.data][:2] == ['mAP', 'AUC-ROC (any)'] and len(f1.data[0].x) == len(MODELS)
    f2 = fig2(preds, 'CNNens-RNN')
    assert sum((t.name or '').startswith('Any ICH: AUC-ROC ') for t in f2.data) == 1
    assert sum((t.name or '').startswith('Any ICH: AUC-PR ') for t in f2.data) == 1
    page = write_report(preds, tmp_path)
    for f in ['figures/fig1.html', 'figures/fig2.html', 'figures/fig1.png', 'figures/fig2.svg',
              'tables/table2.csv', 'tables/table_s3.csv', 'tables/table_s4.html', 'report.html']:
        assert (tmp_path / f).stat().st_size > 500, f
    assert (tmp_path / 'figures' / 'fig1.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    text = page.read_text()
    assert '<script src=' not in text and text.count('plotly-graph-div') == 2
    assert pd.read_csv(tmp_path / 'tables' / 'table_s3.csv').shape == (len(MODELS) * 6, 10)
    assert 'deviation ledger' in text


def test_bootstrap_intervals_are_the_percentiles_of_resampled_studies(preds):
    "The paper's intervals: 1000 percentile-bootstrap resamples of the test studies, for AUC-ROC and AUC-PR alike."
    from ich_nb.stats import bootstrap_ci
    s3 = table_s3(preds, ci='bootstrap', n_boot=200)
    d = preds[(preds.split == 'test') & (preds.model == 'CNNwdw')]
    row = s3[(s3.model == 'CNNwdw') & (s3.cls == 'subdural')].iloc[0]
    assert np.allclose([row.auc_lower, row.auc_upper], bootstrap_ci(roc_auc_score, d.subdural, d.p_subdural, n_boot=200), rtol=1e-12)
    assert np.allclose([row.auc_pr_lower, row.auc_pr_upper], bootstrap_ci(average_precision_score, d.subdural, d.p_subdural, n_boot=200), rtol=1e-12)
    assert row.auc_lower < row.auc < row.auc_upper and row.auc_pr_lower < row.auc_pr < row.auc_pr_upper


def test_table_s1_and_table_1_on_cq500s_real_reads():
    "The paper's Table S1 (Fleiss' κ) and Table 1's CQ500 column, from CQ500's real reads.csv, to the paper's two decimals."
    from conftest import SAMPLES
    from ich_nb.labels import cq500_majority, read_cq500_reads
    from ich_nb.report import paper_values, table1, table_s1
    if not (SAMPLES / 'cq500_reads.csv').exists():
        pytest.skip(f"CQ500's reads.csv is not at {SAMPLES} (CC BY-NC-SA 4.0; the team keeps it outside the repository)")
    reads = read_cq500_reads(SAMPLES / 'cq500_reads.csv')
    s1, paper = table_s1(reads), paper_values()
    for c, kappa in paper['table_s1'].items(): assert s1.printed[c] == kappa, (c, s1.loc[c].tolist(), kappa)
    assert round(s1.fleiss_kappa['intraparenchymal'], 4) == 0.7746                  # 0.78 only by the authors' double rounding
    t1 = table1({'CQ500': cq500_majority(reads)})['CQ500']
    assert t1['Studies'] == '491' and t1['EDH'] == '13 (2.6 %)' and t1['Negative'].endswith('(58.2 %)') and t1['Any ICH'] == '205 (41.8 %)'


def test_a_class_with_no_positive_test_study(preds):
    "The statistics warn of it; the report's tables say n/a there, without repeating the warning once per model and table."
    import warnings
    from ich_nb.stats import class_metrics
    p = preds.copy()
    p.loc[p.split == 'test', 'epidural'] = 0
    t = p[(p.split == 'test') & (p.model == 'CNN')]
    with pytest.warns(UserWarning, match='class epidural: no positive'):
        class_metrics(t[list(CLASSES)].to_numpy(), t[[f'p_{c}' for c in CLASSES]].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        s3 = table_s3(p)
    assert s3[s3.cls == 'epidural'].auc.isna().all() and s3.mAP.notna().all()


def test_metrics_json_is_strict(preds, tmp_path):
    "metrics.json holds null, never NaN, where a number is undefined (a class with no positive test study)."
    import json, warnings
    from ich_nb.files import write_json
    from ich_nb.report import run_metrics
    p = preds.copy()
    p.loc[p.split == 'test', 'epidural'] = 0
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        write_json(run_metrics(p), tmp_path / 'metrics.json')
    def no_nan(c): raise AssertionError(f'metrics.json holds {c}')
    m = json.loads((tmp_path / 'metrics.json').read_text(), parse_constant=no_nan)
    assert m['models']['CNN']['per_class']['epidural']['auc'] is None and m['models']['CNN']['auc_any'] is not None


def test_gradcam_cases_pick_the_most_confident_of_each_kind():
    from ich_nb.report import gradcam_cases
    assert gradcam_cases([1, 1, 0, 0, 1, 0], [.9, .95, .7, .1, .2, .8], .5) == {'TP': 1, 'FP': 5, 'FN': 4}
    assert gradcam_cases([1, 1], [.9, .95], .5) == {'TP': 1, 'FP': None, 'FN': None}


def report_with_everything(preds, out):
    "A report as the series leaves it: Figs 3-4 drawn, provenance, and the executed notebooks as HTML."
    from ich_nb.report import gradcam_figure, provenance, render_executed
    import nbformat
    yy, xx = np.mgrid[:64, :64]
    mask = (yy - 30) ** 2 + (xx - 20) ** 2 < 50
    panel = dict(image=(xx * 3).astype(np.uint8), cam=np.exp(-((yy - 30) ** 2 + (xx - 22) ** 2) / 80), mask=mask, title='EDH TP, p = 0.91')
    (out / 'figures').mkdir(parents=True)
    gradcam_figure([panel] * 5, out / 'figures' / 'fig3.png', ncols=5)
    gradcam_figure([panel, {**panel, 'mask': None}] * 2, out / 'figures' / 'fig4.png', ncols=4)
    (out / 'executed').mkdir()
    for step in ('04_evaluate', '05_explain'):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_raw_cell('---\nskip_exec: true\n---'), nbformat.v4.new_markdown_cell(f'# {step}'),
                                             nbformat.v4.new_code_cell(f"run_dir = '{out}'")])
        nbformat.write(nb, out / 'executed' / f'{step}.ipynb')
    assert [p.name for p in render_executed(out)] == ['04_evaluate.html', '05_explain.html']
    assert sorted(p.name for p in (out / 'executed').iterdir()) == ['04_evaluate.ipynb', '05_explain.ipynb']
    return write_report(preds, out, provenance=provenance(out))


def test_report_has_figs_3_4_provenance_and_links(preds, tmp_path):
    import re
    page = report_with_everything(preds, tmp_path)
    text = page.read_text()
    for h in ('Fig. 1', 'Fig. 2', 'Fig. 3', 'Fig. 4', 'Table 2', 'Table S3', 'Table S4', 'deviation ledger', 'Provenance'):
        assert h in text, h
    assert 'Not made yet' not in text and text.count('data:image/png;base64') >= 2
    links = set(re.findall(r'href="(executed_html/[^"]+)"', text))
    assert links == {'executed_html/04_evaluate.html', 'executed_html/05_explain.html'}
    for l in links:
        page_text = (tmp_path / l).read_text()
        assert str(tmp_path) not in page_text and 'skip_exec' not in page_text and '<h1' in page_text
    assert 'ich_nb ' in text and 'git_commit' in text


def test_report_renders_in_a_browser(preds, tmp_path):
    "In headless Chromium, offline: both plotly figures draw, Figs 3-4 have pixels, the tables carry the paper's names."
    from pathlib import Path
    chromium = Path('/usr/bin/chromium')
    if not chromium.exists(): pytest.skip('Debian chromium is not installed (apt-get install chromium; .ci/run does it)')
    pytest.importorskip('playwright')
    from playwright.sync_api import sync_playwright
    page_file = report_with_everything(preds, tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1300, 'height': 1000})
        errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.route('http*://**', lambda route: route.abort())
        page.goto(page_file.as_uri(), wait_until='load')
        page.wait_for_function("[...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('.main-svg .trace'))",
                               timeout=30_000)
        imgs = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        headers = page.evaluate("[...document.querySelectorAll('table.t th')].map(t => t.textContent)")
        page.screenshot(path=str(tmp_path / 'report.png'), full_page=True)
        browser.close()
    assert not errors, errors
    assert len(imgs) >= 2 and all(w > 0 for w in imgs), imgs
    assert {'Model', 'Class', 'Sensitivity (95 % CI)', 'Specificity (95 % CI)', 'AUC-ROC (95 % CI)', 'Paper: AUC-ROC', 'DeLong p'} <= set(headers), headers[:40]
