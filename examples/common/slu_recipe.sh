# The SLU recipes' skeleton (examples/fsc/run.sh, examples/snips/run.sh): options, then
# the stages of examples/common/stages.sh.  The recipe sets CORPUS_NAME (slu-kd-results'
# --corpus), ROOT_ARG (its corpus root's name in messages) and defines
#   check_corpus:   usage_error unless $CORPUS is a root of its corpus
#   prepare:        stage 0, corpus -> $M/{train,train10,valid,test}.* manifests
#   recipe_option:  its own options, if any (see parse_options; return 1 for unknown ones)
# and may set DEFAULT_UNITS (--units' default; words when unset)
# and sources this file with the command line.
# --ablation: stages 8-10 run the demo's Table-2 grid instead of the one full method (see
# run_grid in stages.sh): two teachers, five rows x {train, train10} x seeds, and the demo's
# results.json / results.md / results.png; the last line is then "results: WORK/results.json".
[ $# -ge 2 ] && [ "${1#--}" = "$1" ] && [ "${2#--}" = "$2" ] || usage_error "$ROOT_ARG and WORK_DIR are required"
CORPUS=$1; WORK=$2; shift 2
STAGE=0; STOP_STAGE=$LAST_STAGE; PROFILE=demo; NJ=$(nproc); UNITS=${DEFAULT_UNITS:-words}; SUBSET=train; PRE=; ALLOW_UNSEEN=()
AUGMENT_OPT=; AUGMENT_AUDIO=none; ABLATION=; SUBSET_OPT=
type recipe_option >/dev/null 2>&1 || recipe_option() { return 1; }
slu_option() {  # the SLU recipes' own options, then the recipe's
  case $1 in
    --allow-unseen-labels) ALLOW_UNSEEN=(--allow-unseen-labels); OPT_SHIFT=1;;
    --pretrained-dir) PRE=${2-};; --subset) SUBSET=${2-}; SUBSET_OPT=1;; --augment) AUGMENT_OPT=${2-};;
    --augment-audio) AUGMENT_AUDIO=${2-};; --ablation) ABLATION=1; OPT_SHIFT=1;;
    *) recipe_option "$@" || corpus_option "$@" || grid_option "$@";;
  esac
}
parse_options slu_option "$@"
case $SUBSET in train|train10) ;; *) usage_error "--subset must be train or train10, not '$SUBSET'";; esac
if [ -n "$ABLATION" ]; then  # the grid fine-tunes on train and train10 as prepared
  [ -z "$SUBSET_OPT" ] || usage_error "--ablation trains on both train and train10: drop --subset"
  [ -z "${AUGMENT_AUDIO//none/}" ] || usage_error "--ablation does not take --augment-audio"
  check_grid_options
fi
check_corpus
[ -z "$PRE" ] || [ -f "$PRE/assets.env" ] || usage_error "$PRE: no assets.env (run examples/librispeech/run.sh first)"
[ -z "$PRE" ] || python -m slu_kd_plugin.cli.check_assets --pretrained-env "$PRE/assets.env" || \
  usage_error "$PRE/assets.env names files that are gone or broken (nothing was run)"
check_options; check_units; recipe_profile "$PROFILE" corpus "$AUGMENT_OPT"
open_work
GRID_MANIFEST=$M  # --ablation: per-voice scores where the manifests have test.spk

if stage 0 "prepare: manifests/{train,train10,valid,test}.{tsv,txt,label,ltr,id} + labels.json"; then
  prepare
  timer_lap "manifests"
fi

augment_audio "$M" "$SUBSET" "$AUGMENT_AUDIO"; SUBSET=$TRAIN_SPLIT  # from here on: SUBSET_aug with --augment-audio

if stage 1 "quantizer: the pretrained dir's, or fitted on the training subset"; then
  if [ -n "$PRE" ]; then
    cp "$PRE/assets.env" "$WORK/assets.env"; load_assets
    # word decoding: the pretrained dir's units, decoded with the LM of this corpus' transcripts
    own_lm_quantizer "$M" "$SUBSET" QUANTIZER "$WORK/quantizer.pt"
  else
    fit_quantizer "$M" "$SUBSET"
  fi
  timer_lap "quantizer"
fi

if stage 2 "units: manifests/*.units, in the units dictionary the speech BERT was trained on"; then
  featurize "$M" train valid test "${AUG_SPLITS[@]}"
  subset_units "$M" train train10
  if [ -n "$PRE" ]; then need_assets UNIT_DICT; cp "$UNIT_DICT" "$M/dict.units.txt"; fi
  timer_lap "units"
fi

if stage 3 "data-bin/{units,input0,label,ltr}: one label dictionary for teacher and student"; then
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

# stages 4-7: the pretrained dir's checkpoints, or trained here on the subset itself
pretrained() {  # pretrained KEY: true (and checked) when --pretrained-dir gave KEY's checkpoint
  [ -n "$PRE" ] || return 1
  need_assets "$1"; [ -f "${!1}" ] || { echo "${!1}: missing" >&2; exit 1; }
  echo "   $1: ${!1} (from $PRE)"
}
speech_bert() { pretrained SPEECH_BERT || train_speech_bert "$DATA" "$SUBSET"; }
text_model() { pretrained TEXT_MODEL || train_text_model "$DATA" "$SUBSET"; }
pt_kd() { pretrained PT_KD || train_pt_kd "$DATA" "$SUBSET"; }
teacher() { train_teacher "$DATA" "$SUBSET"; }
# side by side, one thread each, what needs nothing of the other: the speech BERT (units)
# and the text model (transcripts); then PT-KD (both) and the text teacher(s) (the text
# model's); AM-PT (PT-KD's) after them
side_by_side_stages 4 "speech BERT" speech_bert 5 "text model" text_model
if [ -n "$ABLATION" ]; then
  side_by_side_stages 6 "PT-KD" pt_kd 8 "text teachers: checkpoints/teacher_train and teacher_train10" \
    "teacher_full teacher_10pct"
else
  side_by_side_stages 6 "PT-KD" pt_kd 8 "text teacher: checkpoints/teacher, fine-tuned from the text model" teacher
fi
if stage 7 "AM-PT"; then pretrained AM_PT || train_am_pt "$DATA" "$SUBSET"; timer_lap "AM-PT"; fi

if [ -n "$ABLATION" ]; then  # the Table-2 grid, as examples/synthetic/run.sh runs it
  if stage 9 "SLU fine-tuning: the Table-2 grid, runs/{train,train10}/ROW/seedK"; then
    run_grid
    timer_lap "SLU fine-tuning grid"
  fi
  if stage 10 "results: results.json, results.md (table), results.png (plot)"; then
    grid_results
  fi
else
  if stage 9 "SLU fine-tuning: checkpoints/slu (PT-KD + FT-KD + AM-PT + DA)"; then
    train_slu "$DATA" "$SUBSET"
    timer_lap "SLU fine-tuning"
  fi

  if stage 10 "evaluation: eval/{valid,test}/ (metrics, predictions, confusions) and results.json"; then
    evaluate_slu "$DATA" "$M" "$CORPUS_NAME" "$SUBSET"
  fi
fi
