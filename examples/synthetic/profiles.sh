# Sizes for examples/synthetic/run.sh.  "demo" fits a 2-core CPU in the README's budget;
# "paper" uses the paper's model sizes and schedules (GPU territory).
case ${PROFILE:-demo} in
  demo)
    SYN_SPEAKERS=40; SYN_UTTS=50; SYN_VALID=6; SYN_TEST=6; SYN_PAIRED=800
    SYN_UNITS=words; PHONE_FRAME_MS=30; KMEANS_K=100; KMEANS_FRAMES=200000; SPM_VOCAB=300; MAX_POS=1024
    # a text model pretrained here on 720 sentences never learns a useful <s> (masked LM
    # does not supervise it): PT-KD matches the mean of its final-layer states instead
    TEXT_VECTOR=mean
    BERT_ARCH="--encoder-layers 4 --encoder-embed-dim 128 --encoder-ffn-embed-dim 512 --encoder-attention-heads 4 --max-positions $MAX_POS"
    TEXT_ARCH="--encoder-layers 2 --encoder-embed-dim 128 --encoder-ffn-embed-dim 256 --encoder-attention-heads 4 --max-positions 128"
    DS2_ARCH="--ds2-conv-channels 8 --ds2-lstm-layers 2 --ds2-lstm-hidden 128"
    BERT_BSZ=16; BERT_EPOCHS=4; BERT_LR=1e-3; WARMUP="--lr-scheduler inverse_sqrt --warmup-updates 50"
    TEXT_EPOCHS=15; TEACHER_EPOCHS=15; TEACHER_LR=5e-4
    PTKD_EPOCHS=6; PTKD_LR=3e-4; AM_EPOCHS=10; AM_LR=1e-3
    FT_EPOCHS_FULL=15; FT_EPOCHS_10PCT=40; FT_LR=1e-3; PARALLEL=2
    # the +DA row: unit span masking only. Masking the speech BERT's states as well (the
    # paper's 50% of frames and 40% of channels) keeps a 15-epoch model of this size at
    # chance (full data: 6% test, against 80% for +AM-PT); --profile paper uses both
    AUGMENT=units
    ;;
  paper)
    SYN_SPEAKERS=97; SYN_UTTS=100; SYN_VALID=10; SYN_TEST=10; SYN_PAIRED=5000
    SYN_UNITS=words; PHONE_FRAME_MS=30; KMEANS_K=500; KMEANS_FRAMES=1000000; SPM_VOCAB=2000; MAX_POS=2048; TEXT_VECTOR=cls
    BERT_ARCH="--max-positions $MAX_POS"   # roberta_base: 12 x 768, FFN 3072, 12 heads
    TEXT_ARCH="--max-positions 512"
    DS2_ARCH="--ds2-conv-channels 32 --ds2-lstm-layers 5 --ds2-lstm-hidden 768"
    BERT_BSZ=16; BERT_EPOCHS=50; BERT_LR=5e-4; WARMUP="--lr-scheduler inverse_sqrt --warmup-updates 1000"
    TEXT_EPOCHS=50; TEACHER_EPOCHS=10; TEACHER_LR=1e-5
    PTKD_EPOCHS=20; PTKD_LR=5e-5; AM_EPOCHS=100; AM_LR=1e-4
    FT_EPOCHS_FULL=100; FT_EPOCHS_10PCT=100; FT_LR=1e-4; PARALLEL=1; AUGMENT=units,hidden
    ;;
  *) echo "unknown profile $PROFILE (demo|paper)" >&2; exit 2;;
esac
