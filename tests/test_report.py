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
