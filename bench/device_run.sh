#!/usr/bin/env bash
# The GPU comparison as one script, for a lent GPU machine (bench/RESULTS.md, twelfth round):
# build the compiled core in place with that machine's python3 (it has NumPy, Cython and a
# CUDA PyTorch, and no network), then
#   1. PyTorch on CUDA against ours on 2 CPU threads: hs_kernel, iwae, mi;
#   2. the same for training: vae, full, hierarchical (PyTorch compiled, CUDA graphs);
#   3. both on 16 CPU threads of that machine: vae, hierarchical, iwae.
# Reports go to $OUT (default /tmp/devout).  Each part has a time limit (T1, T2, T3 seconds)
# so that a slow part cannot take the others' time.  On a CPU-only machine,
# DEV=cpu Q=--quick R=1 PY=python bench/device_run.sh tries the script out.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/devout}; mkdir -p $OUT
PY=${PY:-python3}
{ date; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-300;
  $PY -c "import sys,numpy,torch;print(sys.version);print('numpy',numpy.__version__,'torch',torch.__version__)"; } > $OUT/machine.txt 2>&1
$PY setup.py -q build_ext --inplace -j 16 > $OUT/build.log 2>&1 || { echo BUILD FAILED; tail -20 $OUT/build.log; exit 1; }
echo "built $(date +%T)"
R=${R:-2}
timeout ${T1:-200} $PY bench/run.py --torch-device ${DEV:-cuda} --rounds $R ${Q:-} --cases hs_kernel iwae mi --out $OUT/cuda_eval.md 2>&1 | tee $OUT/log.txt
echo "eval done $(date +%T)"
timeout ${T2:-230} $PY bench/run.py --torch-device ${DEV:-cuda} --compile ${COMP:-on} --rounds $R ${Q:-} --cases vae full hierarchical --out $OUT/cuda_train.md 2>&1 | tee -a $OUT/log.txt
echo "train done $(date +%T)"
timeout ${T3:-110} $PY bench/run.py --threads 16 --compile off --rounds 1 --repeats 3 ${Q:-} --cases vae hierarchical iwae --out $OUT/cpu16.md 2>&1 | tee -a $OUT/log.txt
echo "all done $(date +%T)"
