#!/usr/bin/env bash
# The probes of "Importance of Depth and Fine-tuning in BERT-models" (CS224N): one softmax-regression probe per
# hidden state predicts the SQuAD v2.0 answer start and end, on each model pretrained and fine-tuned on SQuAD v2.0
# (that project's model prefixes; its table calls distilbert-base-uncased "DistilBERT Fine-tuned" and the squad2 one
# "BERT Fine-tuned": both typos), 3 epochs, in its three steps: train, predict, evaluate.
#   ./shell/probe.sh FAMILY -v
#     FAMILY      albert, bert, distilbert or all (default: $FAMILY, else all); the pretrained and fine-tuned
#                 models are hub names (albert-base-v2 / twmkn9/albert-base-v2-squad2, and so on)
#     DATA_DIR    holds the official train-v2.0.json and dev-v2.0.json (default data/squad2)
#     OUTPUT_DIR  out/probe by default: each family goes to OUTPUT_DIR/squad2-FAMILY
#     DEVICE      the device the encoder runs on (default cuda)
# Expected: the project publishes no per-layer numbers (its "Reproducing results" says FORTHCOMING). Anchors: the
#   majority baseline ('' everywhere) scores the no-answer share (F1 50.07 on the official dev-v2.0.json, 5945 of
#   11873; 52.12 on CS224N's dev split that project used, 3168 of 6078); the fine-tuned models' last layer should
#   come near their full-model dev F1, since a QA head is itself a linear map of that layer (its table: BERT 75.75,
#   ALBERT 81.89, DistilBERT 68.18), and the pretrained models' probes should stay far below at every layer.
# Hardware: one GPU. All of SQuAD v2.0 train is ~400 GB of features for a base model, over --cache_limit_gb, so the
#   encoder runs again on every batch: 3 passes over ~132k windows of 384 tokens and one over dev per model; roughly
#   half an hour per pair of models on a V100-class GPU (an estimate, not measured: this project's development
#   machines are CPU-only and cannot download the models).
# Outputs, per family: probes/epoch_N.safetensors and predictions/epoch_N.json per model, results.md and results.json
#   (dev F1 per layer and epoch, EM, the baseline) and probe.png (F1 against layer, pretrained and fine-tuned on one
#   plot); a rerun replaces them.
ARG_NAME=FAMILY
source "$(dirname "$0")/_common.sh"
FAMILY=${POSITIONAL[0]:-${FAMILY:-all}}
DATA_DIR=${DATA_DIR:-data/squad2}
OUTPUT_DIR=${OUTPUT_DIR:-out/probe}
DEVICE=${DEVICE:-cuda}
declare -A PRETRAINED=([albert]=albert-base-v2 [bert]=bert-base-uncased [distilbert]=distilbert-base-uncased)
declare -A FINETUNED=([albert]=twmkn9/albert-base-v2-squad2 [bert]=twmkn9/bert-base-uncased-squad2
                      [distilbert]=twmkn9/distilbert-base-uncased-squad2)

case "$FAMILY" in
  all) FAMILIES=(albert bert distilbert) ;;
  albert|bert|distilbert) FAMILIES=("$FAMILY") ;;
  *) die "FAMILY must be albert, bert, distilbert or all, not '$FAMILY'" ;;
esac
need_file "$DATA_DIR/train-v2.0.json" "SQuAD v2.0 train file" "set DATA_DIR"
need_file "$DATA_DIR/dev-v2.0.json" "SQuAD v2.0 dev file" "set DATA_DIR"

for family in "${FAMILIES[@]}"; do
  for step in train predict evaluate; do  # the CS224N project's train.py, predict.py and evaluate.py
    run python probe.py "$step" \
      --task squad \
      --model "${PRETRAINED[$family]}" \
      --model "${FINETUNED[$family]}" \
      --train_file "$DATA_DIR/train-v2.0.json" \
      --validation_file "$DATA_DIR/dev-v2.0.json" \
      --version_2_with_negative `# SQuAD v2.0: questions may have no answer` \
      --max_seq_length 384 \
      --doc_stride 128 \
      --num_train_epochs 3 `# the CS224N project's "gpu 3"` \
      --device "$DEVICE" \
      --output_dir "$OUTPUT_DIR/squad2-$family" `# default out/probe/squad` \
      --overwrite_output_dir `# train: a rerun replaces the probes`
  done
done
