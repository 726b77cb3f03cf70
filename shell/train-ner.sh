#!/usr/bin/env bash
# NER on CoNLL-2003 English (IOB2): fine-tune, keep best/ by dev entity F1, then score best/ on dev and test
# (eval_results.json, test_results.json, predictions_{dev,test}.txt).
#   MODEL=bert-base-cased ./shell/train-ner.sh -v      no argument; the environment:
#     MODEL       roberta-large (default), bert-large-cased or bert-base-cased (hub names)
#     DATA_DIR    holds CoNLL-2003's train.txt, dev.txt and test.txt (default ../shared/data/conll2003)
#     OUTPUT_DIR  default out/ner-$MODEL
# Settings: the old transformers run_ner.py recipe of the 2020 transformers reference scripts (its examples/ner
# README: max_seq_length 128, batch 32, 3 epochs, seed 1, lr 5e-5), the same for all three models.
# Hardware: one GPU (an 80 GB H100 is ample; fp32 as in the recipe). Not yet run in this project: no timing yet.
# Expected, roberta-large: dev F1 95.6, test F1 92.2 (seqeval entity-level micro F1), from the 2020 reference
# scripts' README (their checkpoint was picked by hand on tensorboard, ours by dev F1). bert-base-cased and
# bert-large-cased: that README lists them without numbers; TODO measure.
source "$(dirname "$0")/_common.sh"
MODEL=${MODEL:-roberta-large}
DATA_DIR=${DATA_DIR:-../shared/data/conll2003}
OUTPUT_DIR=${OUTPUT_DIR:-out/ner-$MODEL}
case "$MODEL" in
  roberta-large | bert-large-cased | bert-base-cased) ;;
  *) die "MODEL must be roberta-large, bert-large-cased or bert-base-cased, not '$MODEL'" ;;
esac
for split in train dev test; do
  need_file "$DATA_DIR/$split.txt" "CoNLL-2003 $split file" "set DATA_DIR"
done

run accelerate launch ner.py \
  --model_name_or_path "$MODEL" \
  --train_file "$DATA_DIR/train.txt" \
  --validation_file "$DATA_DIR/dev.txt" \
  --test_file "$DATA_DIR/test.txt" \
  --output_dir "$OUTPUT_DIR" \
  --max_seq_length 128 \
  --per_device_train_batch_size 32 `# the recipe's BATCH_SIZE (default 8)` \
  --learning_rate 5e-5 \
  --num_train_epochs 3 \
  --seed 1 `# the recipe's SEED (default 42)` \
  --metric_for_best_model f1
