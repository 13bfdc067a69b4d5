# The demo's settings (sourced by scripts/demo.sh and scripts/demo_robustness.sh; DEMO_* variables
# override them): the paper's network on the small synthetic corpus, with more, smaller batches, a
# larger learning rate and fewer epochs than the paper's 128 / 1e-4 / 25 on 16k CMU-MOSEI utterances.
BUILD=${BUILD:-build}
N=${DEMO_N:-1200}
SEED=${DEMO_SEED:-1}
HIDDEN=${DEMO_HIDDEN:-256}
EPOCHS=${DEMO_EPOCHS:-12}
BATCH=${DEMO_BATCH:-32}
LR=${DEMO_LR:-1e-3}
THREADS=${DEMO_THREADS:-0}
BIN=$BUILD/sdumc
