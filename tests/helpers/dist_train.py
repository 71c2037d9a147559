"Trains the CNN for one epoch in each of several processes (run under torchrun); each writes what it saw."
import hashlib, json, sys
from pathlib import Path
import pandas as pd
import torch
from fastai.distributed import rank_distrib
from fastai.learner import Callback

from ich_nb.cnn import cnn_learner, slice_dls
from ich_nb.train import fit_resumable


class Served(Callback):
    "Remember which training items this process was served."
    order = 90
    def after_train(self): self.served = list(self.learn.dl.served)


slices, cache, out = pd.read_csv(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
torch.manual_seed(0)
learn = cnn_learner(slice_dls(slices, cache, 'wdw', bs=8), 'resnet10t', mixed_precision=False)
rec = Served()
fit_resumable(learn, 1, 1e-3, out / 'models', 'cnn', seed=3, cbs=[rec])
digest = hashlib.sha256(b''.join(p.detach().numpy().tobytes() for p in learn.model.parameters())).hexdigest()
json.dump(dict(rank=rank_distrib(), served=rec.served, n_train=len(learn.dls.train_ds), digest=digest,
               world=torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1),
          open(out / f'rank{rank_distrib()}.json', 'w'))
