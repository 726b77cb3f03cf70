#!/usr/bin/env bash
# RoBERTa from scratch on your own corpus, the flow of the 2020 transformers reference scripts (run_language_modeling):
# split.py holds out 1/1000 of the lines each for validation and test, a byte-level BPE tokenizer is trained on the
# rest, then roberta-base (configs/roberta-base.json; vocab size, special ids and positions set from the tokenizer)
# is pretrained by MLM.
#   CORPUS=my/all.txt ./shell/train-roberta.sh -v     no argument; the environment:
#     CORPUS      the text, one sequence per line (default korean/all.txt, the reference scripts' path)
#     WORK_DIR    where split.py writes data.train.txt, data.valid.txt and data.test.txt (default: CORPUS's folder)
#     OUTPUT_DIR  tokenizer/, best/, last/, eval_results.json and train_results.json (default out/roberta-scratch)
# Settings: BERT-base's pretraining recipe (batch 256 x 512 tokens, lr 1e-4, 10k warmup steps, weight decay
# 0.01) with RoBERTa's Adam betas (0.9, 0.98) and epsilon 1e-6, dynamic masking, bf16; 100k steps (13B tokens).
# Hardware: one GPU (an 80 GB H100; batch 32 x 8 accumulation). Not yet run in this project: no timing yet.
# Expected: the reference scripts report no number for their RoBERTa from scratch; TODO measure (validation
# perplexity in $OUTPUT_DIR/eval_results.json, tokens/s in train_results.json).
source "$(dirname "$0")/_common.sh"
CORPUS=${CORPUS:-korean/all.txt}
WORK_DIR=${WORK_DIR:-$(dirname "$CORPUS")}
OUTPUT_DIR=${OUTPUT_DIR:-out/roberta-scratch}
need_file "$CORPUS" "corpus" "set CORPUS"
need_file configs/roberta-base.json "model config"

run python split.py \
  --data_path "$CORPUS" \
  --base_path "$WORK_DIR/data.txt" \
  --ratio 1000

run python pretrain_mlm.py \
  --train_file "$WORK_DIR/data.train.txt" \
  --train_tokenizer bpe \
  --vocab_size 52000 `# the HF blog's (default 32000)` \
  --input_sentence_size 10000000 `# a seeded sample of 10M lines is plenty (default: all)` \
  --tokenizer_only \
  --output_dir "$OUTPUT_DIR"

run accelerate launch pretrain_mlm.py \
  --train_file "$WORK_DIR/data.train.txt" \
  --validation_file "$WORK_DIR/data.valid.txt" \
  --tokenizer_name "$OUTPUT_DIR/tokenizer" \
  --config_name configs/roberta-base.json \
  --output_dir "$OUTPUT_DIR" \
  --max_seq_length 512 \
  --preprocessing_num_workers 8 `# (default 1)` \
  --per_device_train_batch_size 32 `# x 8 accumulation = 256 (default 8)` \
  --gradient_accumulation_steps 8 `# (default 1)` \
  --per_device_eval_batch_size 64 `# (default 32)` \
  --learning_rate 1e-4 `# (default 5e-5)` \
  --weight_decay 0.01 `# (default 0)` \
  --adam_beta2 0.98 `# RoBERTa (default 0.999)` \
  --adam_epsilon 1e-6 `# RoBERTa (default 1e-8)` \
  --num_warmup_steps 10000 `# (default 0)` \
  --max_train_steps 100000 `# (default: epochs)` \
  --eval_steps 5000 `# (default: every epoch)` \
  --logging_steps 100 `# (default 10)` \
  --mixed_precision bf16 `# (default no)`
