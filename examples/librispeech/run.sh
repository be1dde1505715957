#!/usr/bin/env bash
# LibriSpeech -> the pretrained assets every SLU recipe (examples/fsc, examples/snips) needs:
# manifests, quantizer, units, data-bin, speech BERT, text model, PT-KD and AM-PT.
#
# usage: examples/librispeech/run.sh LIBRISPEECH_ROOT WORK_DIR [options]
#   LIBRISPEECH_ROOT holds the split dirs as distributed (train-clean-100/<spk>/<chapter>/...)
#   --stage N, --stop-stage M   run stages N..M only (default 0..7); finished training runs are kept
#   --train-splits NAME...      LibriSpeech dirs to train on (default train-clean-100; the
#                               paper's 960 h: train-clean-100 train-clean-360 train-other-500)
#   --valid-split NAME          LibriSpeech dir to validate on (default dev-clean)
#   --vq-wav2vec PATH           quantizer: the published vq-wav2vec_kmeans.pt (env VQ_WAV2VEC);
#                               default: an MFCC k-means quantizer fitted here
#   --speech-bert PATH          speech BERT: the published bert_kmeans checkpoint, file or dir,
#                               with its dict.txt beside it (env BERT_KMEANS; needs --vq-wav2vec);
#                               default: masked LM on the units, trained here
#   --text-model PATH           text model: roberta.base's model.pt or its dir, with dict.txt
#                               beside it (env ROBERTA_BASE), any RoBERTa size; transcripts get
#                               GPT-2 BPE from encoder.json and vocab.bpe beside it unless given below;
#                               default: masked LM on the transcripts (sentencepiece), trained here
#   --gpt2-encoder-json PATH, --gpt2-vocab-bpe PATH   GPT-2 BPE files for --text-model (not in
#                               roberta.base's archive: fairseq's gpt2_bpe/ folder, see README)
#   --text-case lower|keep      GPT-2 BPE input lower-cased (default, the paper's) or as written
#   --profile debug|demo|paper  sizes and schedules (default demo; see recipe_profile in
#                               examples/common/stages.sh)
#   --units words|phones|kmeans the unit source without --vq-wav2vec/--pretrained-dir: phones of
#                               CMU's pretrained en-us model (pocketsphinx), decoded as words with a
#                               trigram of the training transcripts (words, default) or as phones
#                               (phones); or MFCC k-means fitted on the training audio (learns its voices)
#   --nj N                      featurize in N processes side by side (default: the CPU count)
# stages: 0 prepare (manifests)  1 quantizer  2 units  3 data-bin (units, input0, ltr)
#         4 speech BERT  5 text model  6 PT-KD  7 AM-PT  (8-10: the SLU recipes')
# Makes WORK_DIR/checkpoints/{speech_bert,text_model,pt_kd,am_pt}/checkpoint_best.pt and
# WORK_DIR/assets.env; pass WORK_DIR to the SLU recipes as --pretrained-dir.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/../common/stages.sh"
export PATH="$ROOT/.venv/bin:$PATH"

[ $# -ge 2 ] && [ "${1#--}" = "$1" ] && [ "${2#--}" = "$2" ] || usage_error "LIBRISPEECH_ROOT and WORK_DIR are required"
LIBRISPEECH=$1; WORK=$2; shift 2
STAGE=0; STOP_STAGE=7; PROFILE=demo; NJ=$(nproc); UNITS=words; TRAIN_SPLITS=(train-clean-100); VALID_SPLIT=dev-clean
VQ_WAV2VEC_PATH=${VQ_WAV2VEC:-}; SPEECH_BERT_PATH=${BERT_KMEANS:-}; TEXT_MODEL_PATH=${ROBERTA_BASE:-}
GPT2_JSON=; GPT2_BPE=; TEXT_CASE_OPT=lower
ls_option() {
  case $1 in
    --train-splits) shift; TRAIN_SPLITS=(); while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do TRAIN_SPLITS+=("$1"); shift; done
                    OPT_SHIFT=$((${#TRAIN_SPLITS[@]} + 1));;
    --valid-split) VALID_SPLIT=${2-};;
    --vq-wav2vec) VQ_WAV2VEC_PATH=${2-};; --speech-bert) SPEECH_BERT_PATH=${2-};; --text-model) TEXT_MODEL_PATH=${2-};;
    --gpt2-encoder-json) GPT2_JSON=${2-};; --gpt2-vocab-bpe) GPT2_BPE=${2-};; --text-case) TEXT_CASE_OPT=${2-};;
    *) corpus_option "$@";;
  esac
}
parse_options ls_option "$@"
[ ${#TRAIN_SPLITS[@]} -gt 0 ] || usage_error "--train-splits needs at least one split"
[ -d "$LIBRISPEECH" ] || usage_error "$LIBRISPEECH: no such directory"
[ -z "$SPEECH_BERT_PATH" ] || [ -n "$VQ_WAV2VEC_PATH" ] || \
  usage_error "--speech-bert (bert_kmeans) reads vq-wav2vec units: give --vq-wav2vec too"
case $TEXT_CASE_OPT in lower|keep) ;; *) usage_error "--text-case takes lower or keep, not '$TEXT_CASE_OPT'";; esac
check_options; check_units; recipe_profile "$PROFILE"
# every given checkpoint and file is resolved and checked now, not after hours of featurization
given_ckpt() { checkpoint_file "$1" 2>/dev/null || usage_error "$1: no checkpoint there (a .pt file, or a directory with model.pt)"; }
given=()
[ -z "$VQ_WAV2VEC_PATH" ] || given+=(--vq-wav2vec "$(given_ckpt "$VQ_WAV2VEC_PATH")")
[ -z "$SPEECH_BERT_PATH" ] || given+=(--speech-bert "$(given_ckpt "$SPEECH_BERT_PATH")")
if [ -n "$TEXT_MODEL_PATH" ]; then
  text_file=$(given_ckpt "$TEXT_MODEL_PATH"); text_dir=$(dirname "$text_file")
  GPT2_JSON=$(readlink -m "${GPT2_JSON:-$text_dir/encoder.json}"); GPT2_BPE=$(readlink -m "${GPT2_BPE:-$text_dir/vocab.bpe}")
  given+=(--text-model "$text_file" --gpt2-encoder-json "$GPT2_JSON" --gpt2-vocab-bpe "$GPT2_BPE")
fi
[ ${#given[@]} -eq 0 ] || python -m slu_kd_plugin.cli.check_assets "${given[@]}" || \
  usage_error "the checkpoints or files given above cannot be used (nothing was run)"
open_work

if stage 0 "prepare: manifests/{train,valid}.{tsv,txt,ltr,id}"; then
  slu-kd-prepare librispeech "$LIBRISPEECH" "$M" --train "${TRAIN_SPLITS[@]}" --valid "$VALID_SPLIT"
  timer_lap "manifests"
fi

if stage 1 "quantizer: quantizer.pt (fitted on train), or the given vq-wav2vec"; then
  fit_quantizer "$M" train
  timer_lap "quantizer"
fi

if stage 2 "units: manifests/{train,valid}.units and the units dictionary dict.units.txt"; then
  featurize "$M" train valid
  if [ -n "$SPEECH_BERT_PATH" ]; then  # bert_kmeans' embedding rows follow its own dict.txt
    bert_dict="$(dirname "$(checkpoint_file "$SPEECH_BERT_PATH")")/dict.txt"
    [ -f "$bert_dict" ] || { echo "$bert_dict: the speech BERT's dictionary is missing" >&2; exit 1; }
    cp "$bert_dict" "$M/dict.units.txt"
  elif [ "$QUANTIZER_KIND" = vq-wav2vec ]; then
    seen_units_dict "$M" train
  fi
  timer_lap "units"
fi

if stage 3 "data-bin/{units,input0,ltr}: the paired speech-text data of PT-KD and AM-PT"; then
  if [ -n "$TEXT_MODEL_PATH" ]; then  # roberta.base: GPT-2 BPE and its dict.txt
    set_asset TEXT_ENCODER gpt2; set_asset TEXT_DICT "$text_dir/dict.txt"; set_asset TEXT_CASE "$TEXT_CASE_OPT"
    set_asset GPT2_ENCODER_JSON "$GPT2_JSON"; set_asset GPT2_VOCAB_BPE "$GPT2_BPE"
  else  # a text model trained here: sentencepiece fitted on the training transcripts
    mkdir -p "$DATA"; train_spm "$M/train.txt" "$DATA/spm"; TEXT_DICT=
  fi
  text_encoder_args
  slu-kd-binarize "$M" "$DATA" --splits train valid --streams units input0 ltr "${TEXT_ENCODER_ARGS[@]}"
  set_asset UNIT_DICT "$DATA/units/dict.txt"; set_asset TEXT_DICT "$DATA/input0/dict.txt"
  timer_lap "data-bin"
fi

if stage 4 "speech BERT: checkpoints/speech_bert, masked LM on units (or the given bert_kmeans)"; then
  if [ -n "$SPEECH_BERT_PATH" ]; then
    link_checkpoint speech_bert "$(checkpoint_file "$SPEECH_BERT_PATH")"
    set_asset SPEECH_BERT "$CK/speech_bert/checkpoint_best.pt"
    set_asset UNITS_MAX_POS "$(max_positions_of "$SPEECH_BERT" "$MAX_POS")"
  else
    train_speech_bert "$DATA" train
  fi
  timer_lap "speech BERT"
fi

if stage 5 "text model: checkpoints/text_model, masked LM on transcripts (or the given roberta.base)"; then
  if [ -n "$TEXT_MODEL_PATH" ]; then
    [ "${TEXT_ENCODER:-}" = gpt2 ] || { echo "--text-model: re-run stage 3 with it (the text needs GPT-2 BPE)" >&2; exit 1; }
    link_checkpoint text_model "$(checkpoint_file "$TEXT_MODEL_PATH")"
    set_asset TEXT_MODEL "$CK/text_model/checkpoint_best.pt"
    # the teacher is built at the checkpoint's own sizes (roberta.base, .large or another)
    set_asset TEXT_MODEL_ARCH "$(python -m slu_kd_plugin.cli.check_assets --text-model-arch "$TEXT_MODEL")"
    set_asset TEXT_MODEL_VECTOR cls                     # the paper's <s> vector
  else
    [ "${TEXT_ENCODER:-}" = spm ] || { echo "stage 3 encoded the text for roberta.base: give --text-model" >&2; exit 1; }
    train_text_model "$DATA" train
  fi
  timer_lap "text model"
fi

if stage 6 "PT-KD: checkpoints/pt_kd, on the LibriSpeech speech-text pairs"; then
  train_pt_kd "$DATA" train
  timer_lap "PT-KD"
fi

if stage 7 "AM-PT: checkpoints/am_pt, CTC on characters"; then
  train_am_pt "$DATA" train
  timer_lap "AM-PT"
  echo "pretrained assets: $WORK/assets.env"
fi
