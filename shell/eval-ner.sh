#!/usr/bin/env bash
# Scores a trained NER checkpoint on CoNLL-2003 dev and test, no training: the seed's "pick the best
# checkpoint, then run eval-ner.sh". Point CHECKPOINT at a best/ (or last/) folder of shell/train-ner.sh.
#   MODEL=bert-base-cased ./shell/eval-ner.sh -v -v    # MODEL names the run; CHECKPOINT, DATA_DIR, OUTPUT_DIR
# Writes eval_results.json, test_results.json and predictions_{dev,test}.txt into OUTPUT_DIR.
# Hardware: one GPU, or a CPU (minutes for the base model).
# Expected, roberta-large: dev F1 95.6, test F1 92.2 (seqeval entity-level micro F1), from the seed README
# (/work/shared/seeds/000_df182b0200e9703f.txt); the same numbers train-ner.sh printed for its best/.
source "$(dirname "$0")/_common.sh"
MODEL=${MODEL:-roberta-large}
DATA_DIR=${DATA_DIR:-../shared/data/conll2003}
CHECKPOINT=${CHECKPOINT:-out/ner-$MODEL/best}
OUTPUT_DIR=${OUTPUT_DIR:-out/ner-$MODEL/eval}

run python ner.py \
  --do_eval `# evaluate CHECKPOINT as it is (default: train)` \
  --model_name_or_path "$CHECKPOINT" \
  --validation_file "$DATA_DIR/dev.txt" \
  --test_file "$DATA_DIR/test.txt" \
  --output_dir "$OUTPUT_DIR" \
  --max_seq_length 128 \
  --per_device_eval_batch_size 64 `# faster, same numbers (default 32)`
