#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md ("GPU") and the abTEM scans of docs/validation.md, in one
# script, for a CUDA machine whose python3 has PyTorch and CuPy (abTEM, ASE, Dask and Zarr installed
# beside them). On a machine without a package index, carry them as wheels (pip download --no-deps
# --python-version 3.12 ... here; on the machine: pip install --no-index --no-deps --target DIR and
# PYTHONPATH=DIR): abtem, ase, dask, partd, locket, zarr, donfig, numcodecs, google-crc32c, and what
# importing abTEM 1.0.11 pulls in: traitlets, ipywidgets, comm, jupyterlab_widgets, widgetsnbextension,
# ipython, ipython_pygments_lexers, jedi, parso, matplotlib-inline, pexpect, ptyprocess, prompt_toolkit,
# wcwidth, stack_data, executing, asttokens, pure_eval. Run from the repository root:
#
#     benchmarks/gpu_session.sh OUTDIR STAGE [STAGE ...]
#
# Stages:
#   env       GPU, driver and library versions
#   enhance   enhancer wall time on the GPU (benchmarks/enhance_columns.py --device cuda)
#   cell      abTEM time per probe position on one LiCoO2 cell, 0.56/2.25/5.07 nm (simulate_abtem.py)
#   stacks    abTEM scans of the phase scenes (benchmarks/abtem_phases.py --device gpu), saved as
#             OUTDIR/scans/*.npz and scored later on any machine with --load
#   tomo      ASTRA CUDA reconstruction of a 512^3 phantom against the CPU path (benchmarks/tomo_gpu.py), then
#             tests/tomo with device "auto" on the GPU. Wheels to carry (Python 3.12): astra-toolbox,
#             nvidia-cuda-runtime-cu12, algotom, pywavelets, mrcfile, dask, partd, locket, distributed, tblib,
#             zict, tornado; ../shared/data/tomo for the real-file tests. The astra wheel also needs CUDA 12's
#             libcufft.so.11 (nvidia-cufft-cu12, ~280 MB); docs/benchmarks.md says how a CUDA-13-only
#             machine ran it.
#   train     the enhancer trained on the GPU (scripts/train_enhancer.py), then scored against the
#             shipped weights (OUTDIR/enhancer/)
# TRAIN_MINUTES (default 8) bounds the training, INIT (default: the shipped weights), LR (1e-3) and
# SEED (7) start it; STACKS (default: all below) picks scans by name.
set -euo pipefail
out=$1
shift
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

# name scene zone thickness_nm frozen_phonons
ALL_STACKS="degraded_100_5nm degraded 100 5 0
degraded_100_10nm degraded 100 10 0
degraded_110_10nm degraded 110 10 0
spinel_100_5nm spinel 100 5 0
spinel_110_5nm spinel 110 5 0
degraded_100_30nm degraded 100 30 0
degraded_100_5nm_fp8 degraded 100 5 8
degraded_100_20nm degraded 100 20 0
degraded_110_30nm degraded 110 30 0
spinel_100_10nm spinel 100 10 0
degraded_100_10nm_fp8 degraded 100 10 8
spinel_110_10nm spinel 110 10 0
spinel_100_30nm spinel 100 30 0
degraded_110_20nm degraded 110 20 0"

stage_env() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, cupy, abtem, numpy, scipy, skimage, dask, ase
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cupy', cupy.__version__,
      'abtem', abtem.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__,
      'skimage', skimage.__version__, 'dask', dask.__version__, 'ase', ase.__version__)"
}

stage_enhance() {
    python3 benchmarks/enhance_columns.py --device cuda --doses 5e2 --repeats 1 --threads 8 \
        --timing-sizes 512 1024 2048 4096 --json "$out/enhance_cuda.json"
}

stage_cell() {
    python3 benchmarks/simulate_abtem.py --device gpu
}

stage_stacks() {
    mkdir -p "$out/scans"
    echo "$ALL_STACKS" | while read -r name scene zone t fp; do
        if [[ -n "${STACKS:-}" && " $STACKS " != *" $name "* ]]; then continue; fi
        echo "== $name"
        python3 benchmarks/abtem_phases.py --device gpu --scene "$scene" --zone "$zone" --thickness-nm "$t" \
            --frozen-phonons "$fp" --max-batch 512 --seeds 0 --cache /tmp/abtem_cache \
            --save "$out/scans/$name.npz" --json "$out/scans/$name.json"
    done
}

stage_tomo() {
    python3 benchmarks/tomo_gpu.py --size 512 --angles 800 --cpu-rows 8 --iterations 5 --json "$out/tomo_gpu.json"
    python3 -m pytest -q -p no:cacheprovider -W ignore tests/tomo
}

stage_train() {
    mkdir -p "$out/enhancer"
    python3 scripts/train_enhancer.py --device cuda --minutes "${TRAIN_MINUTES:-8}" --batch 16 --patch 128 \
        --pool 64 --buffer 2000 --fresh 4 --threads 8 --log-every 200 --save-every 500 \
        --init "${INIT:-src/layerscope/imaging/weights/enhancer.pt}" --seed "${SEED:-7}" --lr "${LR:-1e-3}" --out "$out/enhancer" 2>&1 | tee "$out/enhancer/train.log"
    python3 benchmarks/enhance_columns.py --device cuda --doses 2e2 5e2 1e3 1e4 --repeats 3 --threads 8 \
        --timing-sizes --weights "$out/enhancer/enhancer.pt" --json "$out/enhancer/score_new.json" | tee "$out/enhancer/score_new.txt"
}

for stage in "$@"; do
    echo "#### $stage $(date -u +%T)"
    SECONDS=0
    "stage_$stage"
    echo "#### $stage done in ${SECONDS} s"
done
