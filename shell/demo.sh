#!/usr/bin/env bash
# The offline demo: every step runs on a CPU with nothing downloaded.
#   1. topic data (multi-label JSONL) and a tiny BERT (2 layers, hidden 32, a WordPiece vocab of the data's words),
#      both built on the spot by tests/tiny.py;
#   2. train.py, the model/ template: multi-label topic classification from that random-init BERT.
# Expected (measured on the 2-core dev machine, 2026-11-21; the same every run): test f1_micro 0.996,
# exact_match 0.985 (dev 0.997 / 0.990).
# Outputs land in demo/ (DEMO_DIR to change); rerunning replaces them.
source "$(dirname "$0")/_common.sh"
DEMO=${DEMO_DIR:-demo}

run python tests/tiny.py data "$DEMO/data"
run python tests/tiny.py model bert "$DEMO/tiny-bert" --corpus "$DEMO/data/train.jsonl"

run python train.py \
  --model_name_or_path "$DEMO/tiny-bert" \
  --train_file "$DEMO/data/train.jsonl" \
  --validation_file "$DEMO/data/valid.jsonl" \
  --test_file "$DEMO/data/test.jsonl" \
  --output_dir "$DEMO/topics" \
  --overwrite_output_dir \
  --num_train_epochs 8 \
  --learning_rate 3e-3 `# a random-init tiny model wants a large rate` \
  --per_device_train_batch_size 16 \
  --metric_for_best_model f1_micro

# NER: synthetic CoNLL-2003-style data (IOB2, -DOCSTART- lines) and ner.py on a tiny BERT
run python tests/fixtures_ner.py "$DEMO/ner-data"
run python tests/tiny.py model bert "$DEMO/tiny-bert-ner" --corpus "$DEMO/ner-data/sentences.txt"
run python ner.py \
  --model_name_or_path "$DEMO/tiny-bert-ner" \
  --train_file "$DEMO/ner-data/train.txt" \
  --validation_file "$DEMO/ner-data/dev.txt" \
  --test_file "$DEMO/ner-data/test.txt" \
  --output_dir "$DEMO/ner" \
  --overwrite_output_dir \
  --num_train_epochs 2 \
  --learning_rate 3e-3 `# a random-init tiny model wants a large rate` \
  --per_device_train_batch_size 16

# GLUE: a synthetic SST-2 folder in the classic layout, glue.py on the same tiny BERT, then the report
run python tests/fixtures_glue.py "$DEMO/glue" --tasks sst2 --sizes 2000,200,200
run python glue.py \
  --task_name sst2 \
  --data_dir "$DEMO/glue/SST-2" \
  --model_name_or_path "$DEMO/tiny-bert" \
  --do_train \
  --do_eval \
  --do_predict \
  --output_dir "$DEMO/glue-runs/sst2" \
  --overwrite_output_dir \
  --learning_rate 3e-3 `# a random-init tiny model wants a large rate` \
  --per_device_train_batch_size 16
run python glue.py --report "$DEMO/glue-runs"
