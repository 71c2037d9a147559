"The CNN and RNN on a tiny phantom: they learn, checkpoints are safe to load, a killed run resumes to the same weights."
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
from fastai.learner import Callback, CancelFitException

from ich_nb.cache import build_cache
from ich_nb.cnn import cnn_learner, predict_slices, slice_dls
from ich_nb.data import index_rsna, split_patients, study_scores
from ich_nb.predict import ensemble
from ich_nb.train import CheckpointError, EpochSeed, fit_resumable, last_checkpoint
from ich_nb.labels import CLASSES
from ich_nb.phantom import make_phantom
from ich_nb.rnn import SliceRNN, predict_rnn, rnn_learner, series_dls


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    make_phantom(root / 'data', n_studies=16, layout='rsna', site='A', matrix=64, prevalence=0.7, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        slices, studies = index_rsna(root / 'data', progress=False)
        studies = split_patients(studies, seed=0)
    slices = slices.merge(studies[['study_id', 'split']], on='study_id')
    build_cache(slices, root / 'cache', 48, progress=False)
    return root, slices


def test_cnn_overfits_a_few_studies_and_predicts(tiny):
    root, slices = tiny
    torch.manual_seed(0)
    learn = cnn_learner(slice_dls(slices, root / 'cache', 'slc', bs=16, augment=None), 'resnet10t')
    learn.fit(6, 2e-3, cbs=[EpochSeed(0)])
    first, last = float(learn.recorder.losses[0]), float(np.mean([float(l) for l in learn.recorder.losses[-5:]]))
    assert last < 0.4 * first, (first, last)
    probs, emb = predict_slices(learn, slices, root / 'cache', 'slc')
    assert probs.shape == (len(slices), 6) and emb.shape == (len(slices), 512)
    assert ((probs >= 0) & (probs <= 1)).all()
    sp = study_scores(slices, probs)
    assert len(sp) == slices.study_id.nunique() and list(sp.columns) == ['study_id', *[f'p_{c}' for c in CLASSES]]
    assert np.allclose(ensemble(probs, 1 - probs), 0.5)



def test_predict_slices_sizes_the_embeddings_by_the_classifier(tiny):
    "mobilenetv3's embedding (1,024, after its conv head) is wider than its `num_features` (576)."
    root, slices = tiny
    learn = cnn_learner(slice_dls(slices, root / 'cache', 'wdw', bs=16, augment=None), 'mobilenetv3_small_100')
    probs, emb = predict_slices(learn, slices, root / 'cache', 'wdw', bs=16)
    assert emb.shape == (len(slices), 1024) and learn.model.num_features == 576
    with torch.no_grad(): logits = learn.model.eval().get_classifier()(torch.from_numpy(emb))
    assert np.allclose(probs, torch.sigmoid(logits).numpy(), atol=1e-5)

class StopAt(Callback):
    "Interrupt training at a given epoch and batch, as a kill would."
    def __init__(self, epoch, batch): self.at = (epoch, batch)
    def after_batch(self):
        if (self.epoch, self.iter) == self.at: raise KeyboardInterrupt


def train(root, slices, folder, stop=None, fused=False, schedule='constant'):
    torch.manual_seed(0)
    learn = cnn_learner(slice_dls(slices, root / 'cache', 'wdw', bs=16), 'resnet10t', fused=fused)
    fit_resumable(learn, 3, 1e-3, folder, 'cnn', seed=7, cbs=[StopAt(*stop)] if stop else [], schedule=schedule)
    return learn


@pytest.mark.parametrize('fused, schedule', [(False, 'constant'), (True, 'constant'), (True, 'one_cycle')],
                         ids=['fastai Adam', 'fused Adam', 'fused Adam, one-cycle'])   # fastai's Adam with one-cycle: 06_train
def test_resume_after_an_interrupted_epoch_gives_the_same_weights(tiny, tmp_path, fused, schedule):
    root, slices = tiny
    whole = train(root, slices, tmp_path / 'whole', fused=fused, schedule=schedule)
    with pytest.raises(KeyboardInterrupt):
        train(root, slices, tmp_path / 'cut', stop=(1, 3), fused=fused, schedule=schedule)    # killed inside epoch 1
    assert last_checkpoint(tmp_path / 'cut', 'cnn')[1] == 0
    resumed = train(root, slices, tmp_path / 'cut', fused=fused, schedule=schedule)         # a new process would start like this
    for (k, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    state = torch.load(last_checkpoint(tmp_path / 'cut', 'cnn')[0], weights_only=True)
    assert state['epoch'] == 2 and set(state) == {'model', 'opt', 'epoch'}
    with pytest.raises(CheckpointError, match='cnn_epoch2.pth.*resume it on the kind of machine'):
        learn = cnn_learner(slice_dls(slices, root / 'cache', 'wdw', bs=16), 'resnet10t', fused=not fused)
        fit_resumable(learn, 4, 1e-3, tmp_path / 'cut', 'cnn')              # the other optimiser: refused, nothing trained
    assert last_checkpoint(tmp_path / 'cut', 'cnn')[1] == 2


def test_rnn_learns_on_cnn_embeddings_and_padding_is_harmless(tiny):
    root, slices = tiny
    torch.manual_seed(0)
    learn = cnn_learner(slice_dls(slices, root / 'cache', 'wdw', bs=16, augment=None), 'resnet10t')
    learn.fit(2, 2e-3)
    _, emb = predict_slices(learn, slices, root / 'cache', 'wdw')
    torch.manual_seed(0)
    rnn = rnn_learner(series_dls(slices, emb, bs=4), n_emb=emb.shape[1], hidden=32)
    rnn.fit(15, 2e-3)
    first, last = float(rnn.recorder.losses[0]), float(np.mean([float(l) for l in rnn.recorder.losses[-3:]]))
    assert last < 0.5 * first, (first, last)
    p = predict_rnn(rnn.model, slices, emb)
    alone = predict_rnn(rnn.model, slices, emb, bs=1)                              # no padding at all
    assert p.shape == (len(slices), 6) and np.allclose(p, alone, atol=1e-5)


def test_paper_size_head():
    head = SliceRNN(n_emb=2048, hidden=2048)
    H = F = 2048
    lstm = lambda i: 2 * (4 * H * (i + H) + 8 * H)
    assert sum(p.numel() for p in head.parameters()) == lstm(3 * F) + lstm(2 * H) + 2 * (4 * H * H + 2 * H) + 2 * H * 6 + 6
    assert head.lstm1.input_size == 3 * 2048 and head.lstm2.input_size == 4096 and head.skip is None
    small = SliceRNN(n_emb=512, hidden=64)
    assert small.skip.in_features == 512 and small.skip.out_features == 128
    out = small(torch.randn(2, 7, 512), torch.tensor([7, 3]))
    assert out.shape == (2, 7, 6)


def test_missing_pretrained_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
    import time
    from ich_nb.cnn import WeightsError, cnn_model
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'empty_cache'))   # nothing cached here
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty_torch'))
    t = time.time()
    with pytest.raises(WeightsError, match=r"not on this machine(.|\n)*timm.create_model\('resnet10t', pretrained=True\)"):
        cnn_model('resnet10t', pretrained=True)
    assert time.time() - t < 30                                           # no waiting on a network
    weights = tmp_path / 'w.pth'
    torch.save(cnn_model('resnet10t').state_dict(), weights)
    assert cnn_model('resnet10t', pretrained=weights).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 6)


def test_cnn_learner_settings_on_the_cpu_and_on_a_gpu(tiny, monkeypatch):
    "On a GPU: cuDNN's timed algorithms, bf16 + channels-last and the fused Adam; on the CPU channels-last alone."
    from fastai.callback.channelslast import ChannelsLast
    from fastai.callback.fp16 import AMPMode, MixedPrecision
    from ich_nb.train import fused_adam, paper_adam
    root, slices = tiny
    monkeypatch.setattr(torch.backends.cudnn, 'benchmark', False)
    dls = slice_dls(slices, root / 'cache', 'wdw', bs=16)
    cpu = cnn_learner(dls, 'resnet10t')
    assert not torch.backends.cudnn.benchmark and cpu.opt_func is paper_adam
    assert not any(isinstance(cb, MixedPrecision) for cb in cpu.cbs) and any(isinstance(cb, ChannelsLast) for cb in cpu.cbs)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)           # the learner is only made, never run
    gpu = cnn_learner(dls, 'resnet10t')
    assert torch.backends.cudnn.benchmark and gpu.opt_func is fused_adam
    assert any(isinstance(cb, MixedPrecision) and cb.amp_mode == AMPMode.BF16 for cb in gpu.cbs)
    assert any(isinstance(cb, ChannelsLast) for cb in gpu.cbs)
