#!/usr/bin/env bash
# Fluent Speech Commands -> a tested intent classifier trained with every stage of the
# method: PT-KD speech BERT, text teacher (fairseq's sentence_prediction), DS2 block
# initialised by AM-PT, FT-KD to the teacher, data augmentation.
#
# usage: examples/fsc/run.sh FSC_ROOT WORK_DIR [options]
#   FSC_ROOT holds data/{train,valid,test}_data.csv and wavs/speakers/ as distributed
#   --stage N, --stop-stage M   run stages N..M only (default 0..7); finished training runs are kept
#   --pretrained-dir DIR        WORK_DIR of examples/librispeech/run.sh: its quantizer, dictionaries,
#                               text encoder and speech BERT / text model / PT-KD / AM-PT checkpoints.
#                               Without it they are all trained here, offline, on the training
#                               subset's own audio and transcripts.
#   --subset train|train10      training data: all of train, or the paper's 10% subset (default train)
#   --profile debug|demo|paper  sizes and schedules (default demo; see recipe_profile in
#                               examples/common/stages.sh)
#   --augment LIST              fine-tuning DA: units,hidden (the paper's: span-masked units and
#                               masked speech-BERT states), units, hidden or none (default: the
#                               profile's; demo uses units only, see recipe_profile)
#   --allow-unseen-labels       keep valid/test intents that training never has (tiny corpora only)
#   --units words|phones|kmeans the unit source without --vq-wav2vec/--pretrained-dir: phones of
#                               CMU's pretrained en-us model (pocketsphinx), decoded as words with a
#                               trigram of the training transcripts (words, default) or as phones
#                               (phones); or MFCC k-means fitted on the training audio (learns its voices)
#   --nj N                      featurize in N processes side by side (default: the CPU count)
#   --augment-audio SPEC        training-audio copies right after the manifests: comma list of
#                               speed (0.9,1.1), pitch (-2,2 semitones), vtlp (formants x0.9,1.1),
#                               noise, reverb, or none (default); later stages use SUBSET_aug
# stages: 0 manifests  1 quantizer  2 units  3 data-bin  4 pretraining (or the given assets)
#         5 text teacher  6 SLU fine-tuning  7 evaluation
# One WORK_DIR per setting.  All metrics go to WORK_DIR/results.json; the last line printed
# is "test accuracy: NN.NN".
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/../common/stages.sh"
export PATH="$ROOT/.venv/bin:$PATH"

[ $# -ge 2 ] && [ "${1#--}" = "$1" ] && [ "${2#--}" = "$2" ] || usage_error "FSC_ROOT and WORK_DIR are required"
CORPUS=$1; WORK=$2; shift 2
STAGE=0; STOP_STAGE=7; PROFILE=demo; NJ=$(nproc); UNITS=words; SUBSET=train; PRE=; ALLOW_UNSEEN=(); AUGMENT_OPT=; AUGMENT_AUDIO=none
while [ $# -gt 0 ]; do
  case $1 in
    --allow-unseen-labels) ALLOW_UNSEEN=(--allow-unseen-labels); shift; continue;;
  esac
  [ $# -ge 2 ] || usage_error "option $1 needs a value"
  case $1 in
    --stage) STAGE=$2;; --stop-stage) STOP_STAGE=$2;;
    --pretrained-dir) PRE=$2;; --subset) SUBSET=$2;;
    --profile) PROFILE=$2;; --nj) NJ=$2;; --units) UNITS=$2;; --augment) AUGMENT_OPT=$2;;
    --augment-audio) AUGMENT_AUDIO=$2;;
    *) usage_error "unknown option $1";;
  esac
  shift 2
done
case $SUBSET in train|train10) ;; *) usage_error "--subset must be train or train10, not '$SUBSET'";; esac
[ -f "$CORPUS/data/train_data.csv" ] || usage_error "$CORPUS: no data/train_data.csv (not an FSC root)"
[ -z "$PRE" ] || [ -f "$PRE/assets.env" ] || usage_error "$PRE: no assets.env (run examples/librispeech/run.sh first)"
[ -z "$PRE" ] || python -m slu_kd_plugin.cli.check_assets --pretrained-env "$PRE/assets.env" || \
  usage_error "$PRE/assets.env names files that are gone or broken (nothing was run)"
check_options; check_units; recipe_profile "$PROFILE"
AUGMENT=${AUGMENT_OPT:-$AUGMENT}; augment_args "$AUGMENT"
mkdir -p "$WORK"; WORK="$(cd "$WORK" && pwd)"
M=$WORK/manifests; DATA=$WORK/data-bin; CK=$WORK/checkpoints
load_assets
timer_start

if stage 0; then  # manifests/{train,train10,valid,test}.{tsv,txt,label,ltr,id} + labels.json
  slu-kd-prepare fsc "$CORPUS" "$M" --subset-fraction 0.1 --subset-name train10 --seed 1 "${ALLOW_UNSEEN[@]}"
  timer_lap "manifests"
fi

augment_audio "$M" "$SUBSET" "$AUGMENT_AUDIO"; SUBSET=$TRAIN_SPLIT  # from here on: SUBSET_aug with --augment-audio

if stage 1; then  # the quantizer: the pretrained dir's, or MFCC k-means fitted on the subset
  if [ -n "$PRE" ]; then
    cp "$PRE/assets.env" "$WORK/assets.env"; load_assets
  else
    fit_quantizer "$M" "$SUBSET"
  fi
  timer_lap "quantizer"
fi

if stage 2; then  # manifests/*.units, in the units dictionary the speech BERT was trained on
  featurize "$M" train train10 valid test "${AUG_SPLITS[@]}"
  if [ -n "$PRE" ]; then need_assets UNIT_DICT; cp "$UNIT_DICT" "$M/dict.units.txt"; fi
  timer_lap "units"
fi

if stage 3; then  # data-bin/{units,input0,label,ltr}: one label dictionary for teacher and student
  [ -n "$PRE" ] || [ -n "${TEXT_ENCODER:-}" ] || { mkdir -p "$DATA"; train_spm "$M/$SUBSET.txt" "$DATA/spm"; }
  text_encoder_args
  label_args=()
  if [ ${#ALLOW_UNSEEN[@]} -gt 0 ]; then  # every split's intents, so valid/test ones are known
    sort -u "$M"/{train,valid,test}.label | sed 's/$/ 1/' > "$WORK/labels.txt"; label_args=(--label-dict "$WORK/labels.txt")
  fi
  slu-kd-binarize "$M" "$DATA" --splits train train10 valid test "${AUG_SPLITS[@]}" "${TEXT_ENCODER_ARGS[@]}" "${label_args[@]}"
  set_asset TEXT_DICT "$DATA/input0/dict.txt"; [ -n "$PRE" ] || set_asset UNIT_DICT "$DATA/units/dict.txt"
  timer_lap "data-bin"
fi

if stage 4; then  # checkpoints/{speech_bert,text_model,pt_kd,am_pt}, unless --pretrained-dir gave them
  if [ -n "$PRE" ]; then
    need_assets SPEECH_BERT TEXT_MODEL PT_KD AM_PT
    for ck in "$SPEECH_BERT" "$TEXT_MODEL" "$PT_KD" "$AM_PT"; do [ -f "$ck" ] || { echo "$ck: missing" >&2; exit 1; }; done
    echo "   pretrained: $PRE"
  else
    train_speech_bert "$DATA" "$SUBSET"; train_text_model "$DATA" "$SUBSET"
    train_pt_kd "$DATA" "$SUBSET"; train_am_pt "$DATA" "$SUBSET"
  fi
  timer_lap "pretraining"
fi

if stage 5; then  # checkpoints/teacher: the text teacher, fine-tuned from the text model
  train_teacher "$DATA" "$SUBSET"
  timer_lap "text teacher"
fi

if stage 6; then  # checkpoints/slu: PT-KD + FT-KD + AM-PT + DA
  train_slu "$DATA" "$SUBSET"
  timer_lap "SLU fine-tuning"
fi

if stage 7; then  # eval/{valid,test}/ (metrics, predictions, confusions) and results.json
  evaluate_slu "$DATA" "$M" fsc "$SUBSET"
fi
