# Shared by the example recipes: stage selection, timing, fairseq-train wrapper,
# and the SLU fine-tuning grid.  Expects ROOT, WORK, STAGE, STOP_STAGE to be set.

stage() { [ "$STAGE" -le "$1" ] && [ "$STOP_STAGE" -ge "$1" ]; }

timer_start() { T0=$(date +%s); TL=$T0; }
# timer_lap NAME: print and record (WORK/timings.tsv, one line per stage run) the time since the last lap
timer_lap() {
  local now; now=$(date +%s)
  printf '%s\t%s\n' "$1" "$((now - TL))" >> "$WORK/timings.tsv"
  echo "== $1: $((now - TL)) s (total $((now - T0)) s)"; TL=$now
}

# train SAVE_DIR DATA FAIRSEQ_ARGS... : fairseq-train on CPU (or the GPU when there is
# one); a finished run is skipped, an interrupted one resumes from checkpoint_last.pt
train() {
  local save=$1 data=$2; shift 2
  if [ -f "$save/.done" ]; then echo "   $(basename "$save"): done before, kept"; return 0; fi
  mkdir -p "$save"
  local device="--cpu"; python -c "import torch,sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null && device=""
  if ! fairseq-train "$data" --user-dir "$ROOT/slu_kd_plugin" $device --save-dir "$save" \
      --optimizer adam --no-epoch-checkpoints --log-format simple --log-interval 50 \
      --num-workers 0 "$@" > "$save/train.log" 2>&1; then
    echo "fairseq-train failed for $save; last lines of $save/train.log:" >&2
    tail -25 "$save/train.log" >&2; return 1
  fi
  touch "$save/.done"
}

label_count() { grep -vc '^madeupword' "$1/label/dict.txt"; }

# ft_run SUBSET ROW SEED: one cell of the table, cumulative as in the paper
ft_run() {
  local sub=$1 row=$2 seed=$3 dir=$WORK/runs/$1/$2/seed$3
  local args=(--speech-bert-path "$CK/pt_kd/checkpoint_best.pt" --criterion slu_cross_entropy)
  case $row in
    baseline) args=(--speech-bert-path "$CK/speech_bert/checkpoint_best.pt" --criterion slu_cross_entropy);;
    pt_kd) ;;
    ft_kd) args+=(--criterion slu_kd --teacher-path "$CK/teacher_$sub/checkpoint_best.pt");;
    am_pt) args+=(--criterion slu_kd --teacher-path "$CK/teacher_$sub/checkpoint_best.pt" --am-path "$CK/am_pt/checkpoint_best.pt");;
    da) args+=(--criterion slu_kd --teacher-path "$CK/teacher_$sub/checkpoint_best.pt" --am-path "$CK/am_pt/checkpoint_best.pt" --augment-units --augment-hidden);;
  esac
  local epochs=$FT_EPOCHS_FULL; [ "$sub" = train10 ] && epochs=$FT_EPOCHS_10PCT
  train "$dir" "$DATA" --task slu_finetuning --arch slu_ds2 $DS2_ARCH "${args[@]}" \
    --train-subset "$sub" --seed "$seed" --max-positions $MAX_POS --batch-size 32 \
    --max-epoch "$epochs" --lr $FT_LR --lr-scheduler fixed --force-anneal 1 --lr-shrink 0.952 \
    --weight-decay 0.01 --best-checkpoint-metric accuracy --maximize-best-checkpoint-metric || return 1
  [ -f "$dir/eval/metrics.json" ] || slu-kd-evaluate "$DATA" --path "$dir/checkpoint_best.pt" \
    --subset test --out-dir "$dir/eval" > "$dir/eval.log" 2>&1 || { tail "$dir/eval.log" >&2; return 1; }
  echo "   $sub $row seed$seed: test $(python -c "import json;print(round(json.load(open('$dir/eval/metrics.json'))['accuracy'],2))")%"
}

run_grid() {
  local fail=0 sub seeds seed row
  export OMP_NUM_THREADS=$(( $(nproc) / PARALLEL > 0 ? $(nproc) / PARALLEL : 1 ))
  for sub in train10 train; do
    seeds=$SEEDSFULL; [ "$sub" = train10 ] && seeds=$SEEDS10
    for seed in $(seq 1 "$seeds"); do
      for row in baseline pt_kd ft_kd am_pt da; do
        ft_run "$sub" "$row" "$seed" &
        while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n || fail=1; done
      done
    done
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || fail=1; done
  unset OMP_NUM_THREADS
  return $fail
}
