#!/usr/bin/env bash
# The offline demo: every step runs on a CPU with nothing downloaded; each script on data made on the spot.
#   1. topic data (multi-label JSONL, tests/tiny.py);
#   2. pretrain_mlm.py: a WordPiece tokenizer and a tiny BERT (2 layers, hidden 32) pretrained from scratch
#      (MLM, whole-word masking) on the topic texts;
#   3. train.py, the model/ template: fine-tunes that BERT on multi-label topic classification;
#   4. ner.py on synthetic CoNLL-2003-style data, with its own tiny BERT (its words are not topic words);
#   5. glue.py on a synthetic SST-2 folder, fine-tuning the step-2 BERT, then the results table;
#   6. probe.py: layer-wise probes of the step-2 BERT, pretrained against SST-2 fine-tuned, with a plot;
#   7. distill.py: the step-2 BERT into a 1-layer DistilBERT on the same text, then SST-2 on the student;
#   8. squad.py on synthetic SQuAD v1.1 files, with its own tiny BERT.
# Expected (measured on the 2-core dev machine, 2026-11-21; the same every run): the EXPECT lines.
# The whole demo: 1 min 14 s there, idle.
# Outputs land in demo/ (DEMO_DIR to change); rerunning replaces them.
source "$(dirname "$0")/_common.sh"
DEMO=${DEMO_DIR:-demo}

run python tests/tiny.py data "$DEMO/data"

# EXPECT: eval perplexity 90.55
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

# EXPECT: test f1_micro 0.992, exact_match 0.970 (dev 0.988 / 0.955)
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
# EXPECT: dev F1 0.969, test F1 0.964
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
# EXPECT: dev accuracy 1.000 (the synthetic SST-2 is easy: this shows the plumbing, not the model)
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

# Probes: where the step-2 BERT holds SST-2's label, pretrained (step 2) against fine-tuned (step 5), one plot
# EXPECT: dev accuracy at hidden states 0/1/2: pretrained 50.0/60.0/62.5, fine-tuned 50.0/60.5/100.0 (majority 50.0)
run python probe.py \
  --task sst2 \
  --data_dir "$DEMO/glue/SST-2" \
  --model "$DEMO/mlm-bert/best" \
  --model "$DEMO/glue-runs/sst2/best" \
  --output_dir "$DEMO/probe-sst2" `# results.md, results.json, probe.png` \
  --overwrite_output_dir \
  --cache_dir "$DEMO/cache" `# keep the hidden-state cache inside the demo folder`

# Distillation: the step-2 BERT (2 layers) into a 1-layer DistilBERT on the same text, then SST-2 on the student
# EXPECT: student perplexity 95.53 against the teacher's 90.55 (26,857 vs 35,465 parameters); SST-2 dev accuracy 1.000
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
# EXPECT: dev EM 96.67 / F1 98.25
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
