#!/usr/bin/env bash
# The offline demo: every step runs on a CPU with nothing downloaded; each script on data made on the spot.
#   1. topic data (multi-label JSONL, tests/tiny.py);
#   2. pretrain_mlm.py: a WordPiece tokenizer and a tiny BERT (2 layers, hidden 32) pretrained from scratch
#      (MLM, whole-word masking) on the topic texts;
#   3. train.py, the model/ template: fine-tunes that BERT on multi-label topic classification;
#   4. ner.py on synthetic CoNLL-2003-style data, with its own tiny BERT (its words are not topic words);
#   5. glue.py on a synthetic SST-2 folder, fine-tuning the step-2 BERT, then the results table;
#   6. distill.py: the step-2 BERT into a 1-layer DistilBERT on the same text, then SST-2 on the student;
#   7. squad.py on synthetic SQuAD v1.1 files, with its own tiny BERT.
# Expected (measured on the 2-core dev machine, 2026-11-21; the same every run): see the EXPECT lines.
# Outputs land in demo/ (DEMO_DIR to change); rerunning replaces them.
source "$(dirname "$0")/_common.sh"
DEMO=${DEMO_DIR:-demo}

run python tests/tiny.py data "$DEMO/data"

# EXPECT: eval perplexity PPL_TODO
run python pretrain_mlm.py \
  --train_file "$DEMO/data/train.jsonl" \
  --validation_file "$DEMO/data/valid.jsonl" \
  --train_tokenizer wordpiece \
  --vocab_size 1000 `# ample for the topic data's words` \
  --model_type bert \
  --config_overrides "num_hidden_layers=2,hidden_size=32,num_attention_heads=2,intermediate_size=64" `# tiny` \
  --max_seq_length 64 \
  --whole_word_mask \
  --output_dir "$DEMO/mlm-bert" \
  --overwrite_output_dir \
  --num_train_epochs 10 \
  --per_device_train_batch_size 16 \
  --learning_rate 3e-3 `# a random-init tiny model wants a large rate`

# EXPECT: TOPICS_TODO
run python train.py \
  --model_name_or_path "$DEMO/mlm-bert/best" \
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
# EXPECT: NER_TODO
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

# GLUE: a synthetic SST-2 folder in the classic layout, glue.py on the step-2 BERT, then the report
# EXPECT: GLUE_TODO
run python tests/fixtures_glue.py "$DEMO/glue" --tasks sst2 --sizes 2000,200,200
run python glue.py \
  --task_name sst2 \
  --data_dir "$DEMO/glue/SST-2" \
  --model_name_or_path "$DEMO/mlm-bert/best" \
  --do_train \
  --do_eval \
  --do_predict \
  --output_dir "$DEMO/glue-runs/sst2" \
  --overwrite_output_dir \
  --learning_rate 3e-3 `# a random-init tiny model wants a large rate` \
  --per_device_train_batch_size 16
run python glue.py --report "$DEMO/glue-runs"

# Distillation: the step-2 BERT (2 layers) into a 1-layer DistilBERT on the same text, then SST-2 on the student
# EXPECT: DISTIL_TODO
run python distill.py \
  --teacher "$DEMO/mlm-bert/best" \
  --config_overrides "n_layers=1,dim=32,hidden_dim=64,n_heads=2,max_position_embeddings=64" `# the teacher's width, 1 layer` \
  --train_file "$DEMO/data/train.jsonl" \
  --validation_file "$DEMO/data/valid.jsonl" \
  --max_seq_length 64 \
  --output_dir "$DEMO/distil-bert" \
  --overwrite_output_dir \
  --num_train_epochs 10 \
  --per_device_train_batch_size 16 \
  --learning_rate 3e-3 `# a tiny model wants a large rate`
run python glue.py \
  --task_name sst2 \
  --data_dir "$DEMO/glue/SST-2" \
  --model_name_or_path "$DEMO/distil-bert/best" \
  --do_train \
  --do_eval \
  --output_dir "$DEMO/glue-distil/sst2" `# apart from glue-runs/, so the report does not mix them` \
  --overwrite_output_dir \
  --learning_rate 3e-3 `# a random-init tiny model wants a large rate` \
  --per_device_train_batch_size 16

# SQuAD: synthetic v1.1 files (one fact per paragraph) and squad.py on a tiny BERT with a vocab of their words
# EXPECT: SQUAD_TODO
run python tests/fixtures_squad.py "$DEMO/squad" --sizes 300,60
run python tests/tiny.py model bert "$DEMO/tiny-bert-squad" --corpus "$DEMO/squad/corpus.txt"
run python squad.py \
  --model_name_or_path "$DEMO/tiny-bert-squad" \
  --train_file "$DEMO/squad/train-v1.1.json" \
  --validation_file "$DEMO/squad/dev-v1.1.json" \
  --output_dir "$DEMO/squad-out" \
  --overwrite_output_dir \
  --max_seq_length 64 `# short synthetic contexts` \
  --doc_stride 16 \
  --max_query_length 16 \
  --learning_rate 3e-3 `# a random-init tiny model wants a large rate` \
  --per_device_train_batch_size 16 \
  --cache_dir "$DEMO/cache" `# keep the tokenized windows inside the demo folder`
