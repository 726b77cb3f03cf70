#!/usr/bin/env bash
# One GLUE task, fine-tuned from bert-base-cased: the run_glue run of the 2020 transformers reference scripts, on
# our loop.
#   ./shell/run-glue.sh TASK -v
#     TASK        cola sst2 mrpc stsb qqp mnli qnli rte wnli (default: $TASK, else sst2)
#     GLUE_DIR    the classic GLUE layout: GLUE_DIR/SST-2/{train,dev,test}.tsv and so on; MNLI has dev_matched,
#                 dev_mismatched, test_matched and test_mismatched (default ../shared/data/glue: no MNLI, QQP or
#                 QNLI train)
#     OUTPUT_DIR  best/, eval_results.json and the submission file for the test set (SST-2.tsv, MNLI-m.tsv +
#                 MNLI-mm.tsv, ...); default out/glue/$TASK; rerunning replaces it
#     SEED        the random seed (default 42)
# Hyper-parameters of the Hugging Face text-classification example: lr 2e-5, batch 32, 3 epochs, 128 tokens.
# Expected, SST-2: dev accuracy 92.4 (the 2020 reference scripts' README: eval_accuracy = 0.9243 from its
# run-glue.sh with bert-base-cased, 2020-10-29; Hugging Face reports 92.32 for the same setting). Other tasks:
# shell/run-glue-all.sh.
# Hardware: one GPU (batch 32 x 128 tokens fits in 12 GB); SST-2 takes about 20 minutes on a V100-class GPU
# (estimate, not measured here: this project's development machines are CPU-only and cannot download
# bert-base-cased).
ARG_NAME=TASK
source "$(dirname "$0")/_common.sh"
TASK=${POSITIONAL[0]:-${TASK:-sst2}}
SEED=${SEED:-42}
GLUE_DIR=${GLUE_DIR:-../shared/data/glue}
OUTPUT_DIR=${OUTPUT_DIR:-out/glue/$TASK}
declare -A FOLDER=([cola]=CoLA [sst2]=SST-2 [mrpc]=MRPC [stsb]=STS-B [qqp]=QQP [mnli]=MNLI [qnli]=QNLI [rte]=RTE [wnli]=WNLI)
[ -n "${FOLDER[$TASK]:-}" ] || die "TASK must be one of cola sst2 mrpc stsb qqp mnli qnli rte wnli, not '$TASK'"
case "$TASK" in
  mnli) SPLITS="train dev_matched dev_mismatched test_matched test_mismatched" ;;
  *) SPLITS="train dev test" ;;
esac
for split in $SPLITS; do
  need_file "$GLUE_DIR/${FOLDER[$TASK]}/$split.tsv" "GLUE $TASK $split file" "set GLUE_DIR"
done

run accelerate launch glue.py \
  --task_name "$TASK" \
  --data_dir "$GLUE_DIR/${FOLDER[$TASK]}" \
  --model_name_or_path bert-base-cased \
  --do_train \
  --do_eval \
  --do_predict \
  --max_seq_length 128 \
  --per_device_train_batch_size 32 `# default 8` \
  --learning_rate 2e-5 `# default 5e-5` \
  --num_train_epochs 3 \
  --seed "$SEED" `# default 42` \
  --output_dir "$OUTPUT_DIR" `# default out/glue/TASK` \
  --overwrite_output_dir `# a rerun replaces the previous one`
