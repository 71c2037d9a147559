"""Build the documentation site: `nbdev_docs` where quarto is installed; otherwise run every step
before quarto's (quarto.yml, module index, sidebar, notebook processing into _proc/) and say so."""
import shutil, sys
from nbdev.config import get_config
from nbdev.doclinks import _build_modidx
from nbdev.quarto import nbdev_docs, nbdev_sidebar, refresh_quarto_yml
from nbdev.serve import proc_nbs

if __name__ == '__main__':
    if shutil.which('quarto'):
        nbdev_docs.__wrapped__()
        sys.exit(0)
    cfg = get_config()
    refresh_quarto_yml()
    _build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    proc_nbs(cfg.nbs_path, n_workers=0)
    print(f"quarto is not installed: notebooks processed into {cfg.config_path/'_proc'}; "
          "install quarto (https://quarto.org) and run `make docs` again for the site in _docs/.")
