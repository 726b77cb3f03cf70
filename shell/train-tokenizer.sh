#!/usr/bin/env bash
# Train a tokenizer on a text corpus: the first step of a model from scratch (shell/train-roberta.sh does it too).
#   KIND=sentencepiece ./shell/train-tokenizer.sh -v     no argument; the environment:
#     KIND        bpe (RoBERTa's byte-level BPE, default), wordpiece (BERT), unigram, or sentencepiece (the
#                 SentencePiece library, as colorfulscoop's bert-base-ja trains its tokenizer)
#     CORPUS      the text (default ../shared/data/wikitext-2/wiki.test.tokens: WikiText-2 test)
#     OUTPUT_DIR  default out/tokenizer-$KIND
# Writes $OUTPUT_DIR/tokenizer/: loads with AutoTokenizer.from_pretrained, and is what --tokenizer_name takes.
# Settings: the HF "how to train" blog's min frequency 2, a vocabulary sized for WikiText-2 (52,000 there, for a
# 3 GB corpus). Hardware: CPU; about 5 s on 2 cores.
# Expected (measured on 2 CPU cores with WikiText-2 test, the default corpus): 8,000 tokens and 1.190 tokens per
# word (bpe); wordpiece 8,000 / 1.271, unigram 7,586 / 1.605, sentencepiece 7,739 / 1.430 (the script prints it,
# on the first 10,000 training lines). bpe, wordpiece and sentencepiece are the same byte for byte every run;
# unigram (tokenizers' trainer) is not.
source "$(dirname "$0")/_common.sh"
KIND=${KIND:-bpe}
CORPUS=${CORPUS:-../shared/data/wikitext-2/wiki.test.tokens}
OUTPUT_DIR=${OUTPUT_DIR:-out/tokenizer-$KIND}
case "$KIND" in
  bpe | wordpiece | unigram | sentencepiece) ;;
  *) die "KIND must be bpe, wordpiece, unigram or sentencepiece, not '$KIND'" ;;
esac
need_file "$CORPUS" "corpus" "set CORPUS"

run python pretrain_mlm.py \
  --train_file "$CORPUS" \
  --train_tokenizer "$KIND" \
  --vocab_size 8000 `# WikiText-2 is small (default 32000)` \
  --min_frequency 2 \
  --input_sentence_size 10000000 `# a seeded sample of at most 10M lines (default: all)` \
  --model_type roberta `# unigram/sentencepiece pair templates: one token type, as RoBERTa (default: none)` \
  --tokenizer_only \
  --output_dir "$OUTPUT_DIR"
