#!/usr/bin/env bash
# SNIPS SLU smart-lights -> a tested intent classifier (6 intents) trained with every stage of
# the method: PT-KD speech BERT, text teacher (fairseq's sentence_prediction), DS2 block
# initialised by AM-PT, FT-KD to the teacher, data augmentation.
#
# usage: examples/snips/run.sh SNIPS_ROOT WORK_DIR [options]
#   SNIPS_ROOT is smart-lights-en-close-field/ or smart-lights-en-far-field/ as distributed:
#   dataset.json (Snips NLU format) and speech_corpus/{metadata.json,audio/}
#   --stage N, --stop-stage M   run stages N..M only (default 0..10); finished training runs are kept
#   --pretrained-dir DIR        WORK_DIR of examples/librispeech/run.sh: its quantizer, dictionaries,
#                               text encoder and speech BERT / text model / PT-KD / AM-PT checkpoints.
#                               Without it they are all trained here, offline, on the training
#                               subset's own audio and transcripts.
#   --split-seed S              seed of the speaker split (default 0; see below)
#   --subset train|train10      training data: all of train, or a 10% subset (default train)
#   --profile debug|demo|paper  sizes and schedules (default demo; see recipe_profile in
#                               examples/common/stages.sh)
#   --augment LIST              fine-tuning DA: units,hidden (the paper's: span-masked units and
#                               masked speech-BERT states), units, hidden or none (default: the
#                               profile's; demo uses units only, see recipe_profile)
#   --allow-unseen-labels       keep valid/test intents that training never has (tiny corpora only)
#   --units words|phrases|phones|kmeans  the unit source without --vq-wav2vec: phones of CMU's
#                               pretrained en-us model (pocketsphinx), decoded as words with a
#                               trigram of the training transcripts (words, default), as one of the
#                               training transcripts (phrases; the trigram where none fits; with
#                               --pretrained-dir: its units, this decoding) or as phones (phones); or
#                               MFCC k-means fitted on the training audio (learns its voices)
#   --nj N                      featurize in N processes side by side (default: the CPU count)
#   --augment-audio SPEC        training-audio copies right after the manifests: comma list of
#                               speed (0.9,1.1), pitch (-2,2 semitones), vtlp (formants x0.9,1.1),
#                               noise, reverb, or none (default); later stages use SUBSET_aug
#   --ablation                  Table 2 of the paper instead of one model: stages 8-10 train a text
#                               teacher per setting (checkpoints/teacher_train, teacher_train10) and
#                               fine-tune the five rows (speech BERT + DS2, + PT-KD, + FT-KD, + AM-PT,
#                               + DA) on train and on train10 for several seeds (runs/SUBSET/ROW/seedK),
#                               then write results.json, results.md (table) and results.png (plot) as
#                               examples/synthetic/run.sh does; not with --subset or --augment-audio
#   --seeds-10pct N, --seeds-full N  with --ablation: seeds of each 10% row and of each
#                               full-data row (default 3 each)
# Split (there is no official one): by speaker, so test voices are unseen; the sorted worker
# ids are shuffled with random.Random(S) and cut 80/10/10 into train/valid/test; a corpus root
# with a split.tsv (workerId<TAB>train|valid|test, written by slu-kd-synth snips) is split by
# it instead (a real SNIPS root has none).  Recordings
# whose text matches no dataset utterance are skipped and listed in manifests/*.skipped.tsv.
# stages: 0 prepare (manifests)  1 quantizer  2 units  3 data-bin  4 speech BERT  5 text model
#         6 PT-KD  7 AM-PT (4-7: the --pretrained-dir's, when given)  8 text teacher
#         9 SLU fine-tuning  10 evaluation (--ablation: 8 teachers  9 the grid  10 results table + plot)
# One WORK_DIR per setting.  All metrics go to WORK_DIR/results.json (intent labels have no
# slots, so there is no per-slot accuracy); the last line printed is "test accuracy: NN.NN",
# with --ablation "results: WORK_DIR/results.json" (a script can parse either).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/../common/stages.sh"
export PATH="$ROOT/.venv/bin:$PATH"

CORPUS_NAME=snips; ROOT_ARG=SNIPS_ROOT; LAST_STAGE=10; SPLIT_SEED=0
recipe_option() { case $1 in --split-seed) SPLIT_SEED=${2-};; *) return 1;; esac; }
check_corpus() {
  [ -f "$CORPUS/dataset.json" ] && [ -f "$CORPUS/speech_corpus/metadata.json" ] || \
    usage_error "$CORPUS: no dataset.json and speech_corpus/metadata.json (not a SNIPS smart-lights root)"
}
prepare() {
  local split_args=(--fractions 0.8 0.1 0.1 --split-seed "$SPLIT_SEED")
  if [ -f "$CORPUS/split.tsv" ]; then  # made with its split (slu-kd-synth snips): keep its unseen test voices
    split_args=(--split-file "$CORPUS/split.tsv"); echo "   split: $CORPUS/split.tsv (--split-seed unused)"
  fi
  slu-kd-prepare snips "$CORPUS" "$M" "${split_args[@]}" --on-bad-audio skip \
    --subset-fraction 0.1 --subset-name train10 --seed 1 "${ALLOW_UNSEEN[@]}"
}
source "$HERE/../common/slu_recipe.sh" "$@"
