#!/usr/bin/env bash
# SQuAD fine-tuning of bert-base-uncased on our loop: v2.0 (the run of "Importance of Depth and Fine-tuning in
# BERT-models", CS224N) or v1.1 (google-research/bert's run).
#   ./shell/run-squad.sh VERSION -v
#     VERSION     v2 or v1.1 (default: $VERSION, else v2)
#     DATA_DIR    holds the official train-v2.0.json and dev-v2.0.json, or train-v1.1.json and dev-v1.1.json
#                 (default data/squad). ../shared/data/squad has only a 10-article slice of train-v2.0 and rebuilt
#                 dev files (fine for evaluation, see its README): not enough to reproduce these numbers.
#     OUTPUT_DIR  best/, predictions.json, nbest_predictions.json, null_odds.json (v2) and eval_results.json
#                 (default out/squad/$VERSION; rerunning replaces it); v2 also reports the scores at the no-answer
#                 threshold tuned on dev (labelled tuned_on_dev: optimistic)
#     SEED        the random seed (default 42)
# v2.0, the CS224N project's run_squad.py command (lr 3e-5, batch 8, 3 epochs, 384 tokens, stride 128). Expected: dev
#   EM 72.36, F1 75.75, HasAns EM 74.30 / F1 81.38, NoAns 70.58 (that project's README table, "BERT Fine-tuned", one
#   run). Caveat: it evaluated on CS224N's split of the official dev set (its printed results say total 6078, not
#   11873), so on the official dev-v2.0.json expect numbers near these, not equal.
# v1.1, google-research/bert's README command for BERT-Base (lr 3e-5, batch 12, 2 epochs, 384/128, warmup 10%, weight
#   decay 0.01). Expected: dev EM 81.2 / F1 88.4 (that README's evaluate-v1.1.py output: 81.25 / 88.41; the BERT paper,
#   Table 2, reports F1 88.5 for BERT-Base).
# Hardware: one GPU with 16 GB or more (batch 8-12 x 384 tokens in fp32; --mixed_precision bf16 on newer GPUs).
#   Roughly 2 h (v2.0, 3 epochs over 130k questions) on a V100-class GPU: an estimate, not measured here (this
#   project's development machines are CPU-only and cannot download bert-base-uncased).
ARG_NAME=VERSION
source "$(dirname "$0")/_common.sh"
VERSION=${POSITIONAL[0]:-${VERSION:-v2}}
DATA_DIR=${DATA_DIR:-data/squad}
SEED=${SEED:-42}
OUTPUT_DIR=${OUTPUT_DIR:-out/squad/$VERSION}
case "$VERSION" in
  v2 | v2.0) FILES="train-v2.0.json dev-v2.0.json" ;;
  v1.1 | v1) FILES="train-v1.1.json dev-v1.1.json" ;;
  *) die "VERSION must be v2 or v1.1, not '$VERSION'" ;;
esac
for file in $FILES; do need_file "$DATA_DIR/$file" "SQuAD $VERSION file" "set DATA_DIR"; done

case "$VERSION" in
  v2|v2.0)
    run accelerate launch squad.py \
      --model_name_or_path bert-base-uncased \
      --train_file "$DATA_DIR/train-v2.0.json" \
      --validation_file "$DATA_DIR/dev-v2.0.json" \
      --version_2_with_negative `# SQuAD v2.0: questions may have no answer` \
      --use_best_threshold `# also report dev's best no-answer threshold (google-research/bert's workflow)` \
      --max_seq_length 384 \
      --doc_stride 128 \
      --max_query_length 64 \
      --per_device_train_batch_size 8 \
      --learning_rate 3e-5 `# default 5e-5` \
      --num_train_epochs 3 \
      --seed "$SEED" \
      --output_dir "$OUTPUT_DIR" `# default out/squad` \
      --overwrite_output_dir `# a rerun replaces the previous one`
    ;;
  v1.1|v1)
    run accelerate launch squad.py \
      --model_name_or_path bert-base-uncased \
      --train_file "$DATA_DIR/train-v1.1.json" \
      --validation_file "$DATA_DIR/dev-v1.1.json" \
      --max_seq_length 384 \
      --doc_stride 128 \
      --max_query_length 64 \
      --per_device_train_batch_size 12 `# default 8` \
      --learning_rate 3e-5 `# default 5e-5` \
      --num_train_epochs 2 `# default 3` \
      --warmup_ratio 0.1 `# default 0.0; google-research/bert's warmup_proportion` \
      --weight_decay 0.01 `# default 0.0; google-research/bert's AdamWeightDecay rate` \
      --seed "$SEED" \
      --output_dir "$OUTPUT_DIR" `# default out/squad` \
      --overwrite_output_dir `# a rerun replaces the previous one`
    ;;
esac
