#!/usr/bin/env bash
# DistilBERT from your own BERT teacher, the "Training DistilBert" recipe of the 2020 transformers reference scripts
# (distillation): split.py holds out 1/1000 of the corpus lines each for validation and test, then distill.py trains
# a 6-layer DistilBERT (configs/distilbert-base.json, the recipe's student config; vocab_size and special ids come
# from the teacher, no hand edit) from the teacher's embeddings, layers 0,2,4,7,9,11 and MLM head.
#   ./shell/train-distilbert.sh TEACHER -v
#     TEACHER     the folder of your BERT/RoBERTa masked-LM teacher (save_pretrained: config.json, weights,
#                 tokenizer); default: $TEACHER, else pytorch.all.bpe.4.8m_step, the recipe's folder name. A hub
#                 model: download it to a folder first (huggingface-cli download NAME --local-dir FOLDER).
#     CORPUS      the text, one sequence per line (default korean/all.txt, the recipe's path)
#     WORK_DIR    where split.py writes data.train.txt, data.valid.txt and data.test.txt (default: CORPUS's folder)
#     OUTPUT_DIR  the student's best/, last/ and eval_results.json (default korean/kor-distil-bpe-bert)
# Settings: the recipe's parameters.json (3 epochs, batch 5 x 50 accumulation, group_by_size, max_model_input_size
# 512: one sequence per line, longer lines cut at 512 tokens where the original splits them) with the
# distillation README's loss weights (ce 5.0, mlm 2.0, cos 1.0, T 2) and its train.py defaults (lr 5e-4,
# Adam eps 1e-6 and betas 0.9/0.98, 5% warmup, clip 5.0, seed 56).
# Hardware: one GPU (an 80 GB H100 holds teacher and student at batch 5 x 512). Not yet run in this project.
# Expected: the recipe reports no number for its DistilBERT (its log ends with "Training is finished"); the
# DistilBERT paper keeps 97% of BERT-base's GLUE score. TODO measure: perplexity of student and teacher on the
# same masks in $OUTPUT_DIR/eval_results.json, then GLUE with run-glue.sh on $OUTPUT_DIR/best.
ARG_NAME=TEACHER
source "$(dirname "$0")/_common.sh"
TEACHER=${POSITIONAL[0]:-${TEACHER:-pytorch.all.bpe.4.8m_step}}
CORPUS=${CORPUS:-korean/all.txt}
WORK_DIR=${WORK_DIR:-$(dirname "$CORPUS")}
OUTPUT_DIR=${OUTPUT_DIR:-korean/kor-distil-bpe-bert}
# the teacher and the corpus first: split.py writes WORK_DIR/data.*.txt
need_dir "$TEACHER" "teacher" "give the teacher's folder: ./shell/train-distilbert.sh TEACHER"
need_file "$TEACHER/config.json" "teacher's config" "expected a saved model (save_pretrained)"
need_file "$CORPUS" "corpus" "set CORPUS"
need_file configs/distilbert-base.json "student config"

run python split.py \
  --data_path "$CORPUS" \
  --base_path "$WORK_DIR/data.txt" \
  --ratio 1000

run accelerate launch distill.py \
  --teacher "$TEACHER" \
  --student_config configs/distilbert-base.json \
  --student_init teacher \
  --train_file "$WORK_DIR/data.train.txt" \
  --validation_file "$WORK_DIR/data.valid.txt" \
  --output_dir "$OUTPUT_DIR" \
  --max_seq_length 512 `# the recipe's max_model_input_size` \
  --line_by_line `# one sequence per line, as the recipe (default: packed blocks)` \
  --group_by_length `# the recipe's group_by_size (default off)` \
  --preprocessing_num_workers 8 `# (default 1)` \
  --num_train_epochs 3 \
  --per_device_train_batch_size 5 `# the recipe's batch_size (default 8)` \
  --gradient_accumulation_steps 50 `# the recipe's (default 1)` \
  --alpha_ce 5.0 \
  --alpha_mlm 2.0 \
  --alpha_cos 1.0 \
  --alpha_mse 0.0 \
  --temperature 2.0 \
  --mlm_probability 0.15 \
  --mlm_smoothing 0.7 \
  --learning_rate 5e-4 \
  --adam_epsilon 1e-6 \
  --adam_beta2 0.98 \
  --warmup_ratio 0.05 \
  --max_grad_norm 5.0 \
  --seed 56 `# distillation/train.py's (default 42)` \
  --logging_steps 100 `# (default 10)`
