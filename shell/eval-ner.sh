#!/usr/bin/env bash
# Scores a trained NER checkpoint on CoNLL-2003 dev and test, no training: the second half of the NER workflow of
# the 2020 transformers reference scripts (run_ner): "pick the best checkpoint, then evaluate it".
#   MODEL=bert-base-cased ./shell/eval-ner.sh -v      no argument; the environment says what to score:
#     MODEL       names the run (default roberta-large)
#     CHECKPOINT  the model folder to score (default out/ner-$MODEL/best: the best/ of shell/train-ner.sh)
#     DATA_DIR    holds CoNLL-2003's dev.txt and test.txt (default ../shared/data/conll2003)
#     OUTPUT_DIR  gets eval_results.json, test_results.json and predictions_{dev,test}.txt
#                 (default out/ner-$MODEL/eval)
# Expected, roberta-large: dev F1 95.6, test F1 92.2 (seqeval entity-level micro F1), the numbers the 2020 reference
# scripts' README reports for their roberta-large run; the same numbers shell/train-ner.sh prints for its best/.
# Hardware: one GPU, or a CPU (minutes for the base model).
source "$(dirname "$0")/_common.sh"
MODEL=${MODEL:-roberta-large}
DATA_DIR=${DATA_DIR:-../shared/data/conll2003}
CHECKPOINT=${CHECKPOINT:-out/ner-$MODEL/best}
OUTPUT_DIR=${OUTPUT_DIR:-out/ner-$MODEL/eval}
need_model "$CHECKPOINT" "CHECKPOINT"
need_file "$DATA_DIR/dev.txt" "CoNLL-2003 dev file" "set DATA_DIR"
need_file "$DATA_DIR/test.txt" "CoNLL-2003 test file" "set DATA_DIR"

run python ner.py \
  --do_eval `# evaluate CHECKPOINT as it is on dev (no --do_train: no training)` \
  --do_predict `# and score the test set` \
  --model_name_or_path "$CHECKPOINT" \
  --validation_file "$DATA_DIR/dev.txt" \
  --test_file "$DATA_DIR/test.txt" \
  --output_dir "$OUTPUT_DIR" \
  --max_seq_length 128 \
  --per_device_eval_batch_size 64 `# faster, same numbers (default 32)`
