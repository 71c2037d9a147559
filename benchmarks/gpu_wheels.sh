#!/bin/bash
# Download, into .whl/ (ignored by git), the wheels that the GPU machine's Python 3.12 lacks for
# ich_nb and the paper's series: fastai and its own, pydicom and its JPEG decoders, papermill and
# the Jupyter kernel stack, plotly, ipywidgets, and python-fasthtml, which fastprogress 1.1 imports
# (about 39 MB). Its image has torch, timm, numpy,
# pandas, scikit-learn, statsmodels, matplotlib, pillow, pyyaml, accelerate and the rest.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .git/info .whl
grep -qs '^/.whl/$' .git/info/exclude || echo /.whl/ >> .git/info/exclude
plat=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for n in 5 12 17 24 26 27 28 31 34 35; do plat+=(--platform "manylinux_2_${n}_x86_64"); done
for w in asttokens==3.0.2 beartype==0.23.1 comm==0.2.3 debugpy==1.8.22 entrypoints==0.4.2 executing==2.3.0 \
         fastai==2.8.7 fastcore==1.14.5 fastdownload==0.0.8 fastjsonschema==2.22.3 fastprogress==1.1.6 \
         fasttransform==0.0.2 ipykernel==7.4.0 ipython==9.18.1 ipython-pygments-lexers==1.1.1 ipywidgets==8.1.9 \
         jedi==0.20.1 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 jupyter-client==8.10.0 \
         jupyter-core==5.9.1 jupyterlab-widgets==3.0.17 matplotlib-inline==0.2.2 nbclient==0.11.0 nbformat==5.11.1 \
         nest-asyncio2==1.7.4 papermill==2.7.0 parso==0.8.7 pexpect==4.9.0 platformdirs==4.14.8 plotly==7.1.0 \
         plum-dispatch==2.10.1 prompt-toolkit==3.0.53 ptyprocess==0.7.0 pure-eval==0.2.4 pydicom==3.0.2 \
         pylibjpeg==2.1.0 pylibjpeg-libjpeg==2.5.0 pylibjpeg-openjpeg==2.6.0 pyzmq==27.3.0 referencing==0.37.0 \
         rpds-py==2026.9.1 stack-data==0.6.3 tenacity==9.2.1 tornado==6.6.1 traitlets==5.16.1 wcwidth==0.9.4 \
         widgetsnbextension==4.0.16 \
         python-fasthtml==0.14.5 starlette==1.10.0 uvicorn==0.54.0 oauthlib==4.0.1 itsdangerous==2.2.0 \
         httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 fastlite==0.2.4 apswutils==0.1.2 apsw==3.54.1.0 \
         python-multipart==0.0.34 beautifulsoup4==4.15.0 soupsieve==4.1.3; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d .whl "$w"
done
ls .whl | wc -l; du -sh .whl
