"ich_nb.stats against every number of the reference vectors in tests/fixtures/stats (pROC, R, epiR, Hmisc, scikit-learn), to 1e-9 relative."
import json
import numpy as np
import pandas as pd
import pytest

from ich_nb.stats import (auc_ci, class_metrics, clopper_pearson, delong_cov, delong_test, delong_unpaired_test, likelihood_ratios,
                          mcnemar_test, mean_average_precision, operating_points, roc_points, threshold_metrics)
from conftest import ROOT

REF = ROOT / 'tests' / 'fixtures' / 'stats'                    # copied from the team's shared/reference/stats
SHARED = ROOT.parent / 'shared' / 'reference' / 'stats'
ASAH = pd.read_csv(REF / 'aSAH.csv')
Y = ASAH.poor_outcome.to_numpy()


@pytest.fixture
def ref():
    def load(name):
        return json.loads((REF / name).read_text())
    return load


def num(v):
    return {'Inf': np.inf, '-Inf': -np.inf, 'NaN': np.nan, 'NA': np.nan}.get(v, v)


def close(got, want, rel=1e-9, abs_=1e-12):
    got, want = np.asarray(got, float), np.asarray([num(w) for w in np.ravel(want)], float).reshape(np.shape(want))
    assert np.allclose(got, want, rtol=rel, atol=abs_, equal_nan=True), (got, want)


def test_fixtures_are_the_shared_reference_data():
    "The copies in tests/fixtures/stats are byte for byte the team's reference files, where those are present."
    if not SHARED.is_dir(): pytest.skip(f"the team's reference folder is not at {SHARED}: the copies in {REF} are used as they are")
    for f in SHARED.glob('*'):
        if f.suffix in ('.json', '.csv'): assert (REF / f.name).read_bytes() == f.read_bytes(), f.name


def test_proc_testsuite_quoted(ref):
    q = ref('proc_testsuite_quoted.json')
    auc, cov = delong_cov(Y, np.stack([ASAH.wfns, ASAH.ndka, ASAH.s100b]))
    close(auc[:2], [q['auc']['wfns']['value'], q['auc']['ndka']['value']])
    close(np.diag(cov), [q['delong_var'][m]['value'] for m in ('wfns', 'ndka', 's100b')])
    close([cov[0, 1], cov[1, 2], cov[2, 0]], [q['delong_cov'][k]['value'] for k in ('wfns_ndka', 'ndka_s100b', 's100b_wfns')])
    c = q['ci_auc_delong_ndka']
    close(auc_ci(Y, ASAH.ndka), [c['auc'], c['lower'], c['upper']])
    for pair, v in q['roc_test_delong_paired_two_sided'].items():
        a, b = pair.split('_vs_')
        r = delong_test(Y, ASAH[a], ASAH[b])
        close([r.z, r.p], [v['Z'], v['p']])
        if 'ci95_diff' in v: close(r.ci, v['ci95_diff'])
    for pair, v in q['roc_test_delong_unpaired_welch_like'].items():
        a, b = pair.split('_vs_')
        d, _, p = delong_unpaired_test(Y, ASAH[a], Y, ASAH[b])
        close([d, p], [v['D'], v['p']])
    one = q['roc_test_delong_paired_one_sided_wfns_vs_s100b']
    close([delong_test(Y, ASAH.wfns, ASAH.s100b, 'greater').p, delong_test(Y, ASAH.wfns, ASAH.s100b, 'less').p],
          [one['p_greater'], one['p_less']])


def test_proc_delong_asah(ref):
    d = ref('proc_delong_asah.json')
    for m, v in d['per_marker'].items():
        auc, cov = delong_cov(Y, ASAH[m])
        close([auc[0], cov[0, 0], np.sqrt(cov[0, 0])], [v['auc'], v['delong_var'], v['delong_se']])
        close(auc_ci(Y, ASAH[m])[1:], v['ci95_delong'])
    for pair, v in d['paired_delong'].items():
        a, b = pair.split('_vs_')
        r = delong_test(Y, ASAH[a], ASAH[b])
        close([r.auc_a, r.auc_b, r.z, r.p, *r.ci], [v['auc1'], v['auc2'], v['z'], v['p_two_sided'], *v['ci95_diff']])
        close([delong_test(Y, ASAH[a], ASAH[b], 'greater').p, delong_test(Y, ASAH[a], ASAH[b], 'less').p], [v['p_greater'], v['p_less']])
        close(delong_cov(Y, np.stack([ASAH[a], ASAH[b]]))[1][0, 1], v['cov12'])
    u = d['unpaired_delong_wfns_vs_s100b']
    close(delong_unpaired_test(Y, ASAH.wfns, Y, ASAH.s100b), [u['D'], u['df'], u['p_two_sided']])


def test_proc_delong_small_edge_cases(ref):
    for case in ref('proc_delong_small.json')['cases']:
        y = np.array(case['y'])
        for k in (1, 2):
            s, v = np.array(case[f'score{k}']), case[f'roc{k}']
            auc, cov = delong_cov(y, s)
            close([auc[0], cov[0, 0]], [v['auc'], v['delong_var']])
            close(auc_ci(y, s)[1:], v['ci95_delong'])
        r, v = delong_test(y, case['score1'], case['score2']), case['paired_delong']
        close([r.auc_a, r.auc_b, r.z, r.p, *r.ci], [v['auc1'], v['auc2'], v['z'], v['p_two_sided'], *v['ci95_diff']])
        close([delong_test(y, case['score1'], case['score2'], 'greater').p], [v['p_greater']])


def test_clopper_pearson(ref):
    for c in ref('clopper_pearson.json')['cases']:
        close(clopper_pearson(c['x'], c['n'], 1 - c['conf_level']), [c['lower'], c['upper']])


def test_mcnemar(ref):
    for c in ref('mcnemar.json')['cases']:
        t = [[c['table']['a'], c['table']['b']], [c['table']['c'], c['table']['d']]]
        cc, no, ex, mid = (mcnemar_test(table=t, method=m) for m in ('chi2_cc', 'chi2', 'exact', 'midp'))
        close([cc.statistic, cc.p, no.statistic, no.p, ex.p, mid.p],
              [c['chi2_cc'], c['p_chi2_cc'], c['chi2_no_cc'], c['p_chi2_no_cc'], c['p_exact_binomial'], c['p_mid_p']])
        assert mcnemar_test(table=t).method == ('exact' if min(min(r) for r in t) < 25 else 'chi2_cc')


def test_likelihood_ratios(ref):
    keys = ['lr_pos', 'lr_pos_lower', 'lr_pos_upper', 'lr_neg', 'lr_neg_lower', 'lr_neg_upper']
    for c in ref('likelihood_ratios.json')['cases']:
        n = c['counts']
        with np.errstate(all='ignore'):
            got = likelihood_ratios(n['tp'], n['fp'], n['fn'], n['tn'])
            fixed = likelihood_ratios(n['tp'], n['fp'], n['fn'], n['tn'], correction=True)
        close([got[k] for k in keys], [c['epiR'][k] for k in keys])
        close([fixed[k] for k in keys], [c['Hmisc_lrcum'][k] for k in keys])


def test_average_precision_and_map(ref):
    d = ref('average_precision.json')
    b = d['sklearn_doc_binary']
    close(class_metrics(np.array(b['y_true'])[:, None], np.array(b['y_score'])[:, None], ['any']).auc_pr, [b['average_precision']])
    m = d['sklearn_doc_multiclass']
    onehot = np.eye(3)[m['y_true']]
    close(class_metrics(onehot, np.array(m['y_score']), ['a', 'b', 'c']).auc_pr, m['per_class'])
    close(mean_average_precision(onehot, np.array(m['y_score'])), m['micro'])
    ml, data = d['multilabel6'], pd.read_csv(REF / 'multilabel6.csv')
    y = data[[f'y_{c}' for c in ml['input']['labels']]].to_numpy()
    s = data[[f'score_{c}' for c in ml['input']['labels']]].to_numpy()
    cm = class_metrics(y, s, ml['input']['labels'])
    close(cm.auc_pr, [ml['ap_per_class'][c] for c in ml['input']['labels']])
    close(cm.auc, [ml['roc_auc_per_class'][c] for c in ml['input']['labels']])
    close(mean_average_precision(y, s), ml['ap_micro'])


def test_youden_point_as_proc(ref):
    q = ref('proc_testsuite_quoted.json')['coords_best_youden_s100b']
    pts = roc_points(Y, ASAH.s100b)
    best = pts.iloc[np.argmax(pts.sensitivity + pts.specificity)]
    close([best.sensitivity, best.specificity], [q['sensitivity'], q['specificity']], rel=1e-6)
    lo, hi = np.sort(ASAH.s100b.unique())[np.searchsorted(np.sort(ASAH.s100b.unique()), best.threshold) - 1:][:2]
    assert lo < q['threshold'] <= hi          # pROC's threshold is the midpoint below our smallest positive score


def test_tiny_p_is_not_rounded_to_zero():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.4
    a = y + rng.normal(0, 0.6, 3000)            # a good model
    b = y + rng.normal(0, 2.0, 3000)            # a poor one
    r = delong_test(y, a, b)
    assert 0 < r.p < 1e-10 and abs(r.p / (2 * __import__('scipy').stats.norm.sf(abs(r.z))) - 1) < 1e-12


def test_edge_cases_are_decided():
    y = np.array([0, 0, 1, 1])
    assert delong_test(y, [.1, .2, .8, .9], [.1, .2, .8, .9]).p == 1                 # identical models
    assert delong_test(y, [.1, .2, .8, .9], [1, 2, 3, 4]).p == 1                      # both perfect
    assert auc_ci(y, [.5, .5, .5, .5])[0] == 0.5                                      # all ties
    with pytest.raises(ValueError, match='positive and negative'):
        delong_test([1, 1], [.1, .2], [.3, .4])
    with pytest.warns(UserWarning, match='NaN'):
        assert np.isnan(operating_points([1, 1, 1], [.2, .3, .4])['balanced'])
    ops = operating_points(y, [.1, .2, .8, .9])                                       # perfect separation
    assert ops == dict(high_sensitivity=0.8, balanced=0.8)
    row = threshold_metrics(y, [.1, .2, .8, .9], 0.8)
    assert (row['sensitivity'], row['specificity'], row['lr_pos']) == (1, 1, np.inf) and row['lr_neg'] == 0
    assert mcnemar_test([1, 1, 0], [1, 1, 0]).p == 1


def test_operating_point_rules():
    # validation scores where specificity >= 0.8 only reaches sensitivity 0.6: the 0.7 fallback applies
    y = np.array([1] * 10 + [0] * 10)
    s = np.array([.9, .85, .8, .75, .7, .6, .45, .4, .35, .3] + [.95, .65, .55, .5, .2, .15, .1, .05, .04, .03])
    pts = roc_points(y, s).set_index('threshold')
    ops = operating_points(y, s)
    hs = pts.loc[ops['high_sensitivity']]
    assert pts[pts.specificity >= 0.8].sensitivity.max() < 0.93
    assert hs.specificity >= 0.7 and hs.sensitivity == pts[pts.specificity >= 0.7].sensitivity.max()
    bal = pts.loc[ops['balanced']]
    ok = pts[pts.sensitivity >= 0.85]
    assert bal.sensitivity >= 0.85 and (bal.sensitivity + bal.specificity) == (ok.sensitivity + ok.specificity).max()
