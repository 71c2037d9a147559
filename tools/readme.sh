#!/usr/bin/env bash
# README.md from nbs/index.ipynb (nbdev_readme needs quarto, which is not installable everywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf README_files
.venv/bin/jupyter nbconvert --to markdown nbs/index.ipynb --output-dir . --output README --log-level WARN
