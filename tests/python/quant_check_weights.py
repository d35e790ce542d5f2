"""Check whittle's quantized weights against the ONNX formula, computed with numpy.

    quant_check_weights.py ORIGINAL.onnx QUANTIZED.onnx

For every DequantizeLinear of constants in QUANTIZED, and every com.microsoft MatMulNBits,
the float weight it replaced is found in ORIGINAL (the consumer node is matched by its first
output name; the weight is the original node's input at the same slot). Then:

- `q_expected = clip(rint(w / scale) + zero_point, qmin, qmax)` in float32 with the written
  scale and zero point broadcast per tensor / per axis / per block (numpy's rint rounds half
  to even, as ONNX QuantizeLinear does) must equal the stored integers exactly;
- the dequantized tensor onnxruntime computes (the DequantizeLinear node alone, run in a
  one-node model) must equal numpy's `(q - zero_point) * scale` exactly (DequantizeLinear
  forms only).

JSON: `checked` (list of {weight, kind, elements, max_abs_err, sqnr_db}), `mismatches` (count
of stored integers differing from numpy), `ok`.
"""
import argparse
import os
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

from _common import run, session

RANGES = {onnx.TensorProto.INT8: (-128, 127), onnx.TensorProto.UINT8: (0, 255),
          onnx.TensorProto.INT4: (-8, 7), onnx.TensorProto.UINT4: (0, 15)}


def arr(t):
    return numpy_helper.to_array(t)


def broadcast(p, shape, axis, block):
    """Per-tensor, per-axis or blocked parameters expanded to the weight's shape."""
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1:
        return np.broadcast_to(p.reshape(()), shape)
    if block:
        return np.repeat(p, block, axis=axis).take(range(shape[axis]), axis=axis)
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(p.reshape(view), shape)


def ort_dequantize(node, inits):
    """Runs the DequantizeLinear node alone in onnxruntime."""
    tensors = [inits[i] for i in node.input]
    out = helper.make_tensor_value_info("y", inits[node.input[1]].data_type, None)
    dq = helper.make_node("DequantizeLinear", list(node.input), ["y"], **{
        a.name: helper.get_attribute_value(a) for a in node.attribute})
    g = helper.make_graph([dq], "dq", [], [out], initializer=tensors)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "dq.onnx")
        onnx.save(m, path)
        return session(path).run(None, {})[0]


def sqnr(w, d):
    noise = float(np.sum((w.astype(np.float64) - d.astype(np.float64)) ** 2))
    return None if noise == 0 else 10 * np.log10(float(np.sum(w.astype(np.float64) ** 2)) / noise)


def check_dq(node, inits, w, rec):
    x, scale = inits[node.input[0]], arr(inits[node.input[1]])
    zp_t = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    q = arr(x).astype(np.int64)
    zp = arr(zp_t).astype(np.int64) if zp_t is not None else np.zeros((), np.int64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axis = attrs.get("axis", 1) % max(w.ndim, 1)
    block = attrs.get("block_size", 0)
    qmin, qmax = RANGES[x.data_type]
    s, z = broadcast(scale, w.shape, axis, block), broadcast(zp, w.shape, axis, block)
    expected = np.clip(np.rint(w.astype(np.float32) / s.astype(np.float32)) + z, qmin, qmax).astype(np.int64)
    deq = ((q - z).astype(np.float32) * s.astype(np.float32)).astype(scale.dtype)
    got = ort_dequantize(node, inits)
    rec.update(mismatches=int(np.sum(expected != q)), ort_equals_numpy=bool(np.array_equal(got, deq)),
               max_abs_err=float(np.max(np.abs(w.astype(np.float32) - deq.astype(np.float32)))),
               sqnr_db=sqnr(w, deq), bits=8 if x.data_type in (2, 3) else 4)
    return deq


def check_nbits(node, inits, w, rec):
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    k, n, bits, block = attrs["K"], attrs["N"], attrs["bits"], attrs["block_size"]
    blocks = -(-k // block)
    b = arr(inits[node.input[1]]).reshape(n, blocks, block * bits // 8)
    if bits == 4:
        codes = np.stack([b & 0x0F, b >> 4], axis=-1).reshape(n, blocks * block)
    else:
        codes = b.reshape(n, blocks * block)
    codes = codes[:, :k].astype(np.int64)
    scales = arr(inits[node.input[2]]).astype(np.float32).reshape(n, blocks)
    if len(node.input) > 3 and node.input[3]:
        zb = arr(inits[node.input[3]]).reshape(n, -1)
        zps = (np.stack([zb & 0x0F, zb >> 4], axis=-1).reshape(n, -1) if bits == 4 else zb)[:, :blocks]
    else:
        zps = np.full((n, blocks), 1 << (bits - 1))
    s = np.repeat(scales, block, axis=1)[:, :k]
    z = np.repeat(zps.astype(np.int64), block, axis=1)[:, :k]
    wt = w.astype(np.float32).T
    expected = np.clip(np.rint(wt / s) + z, 0, (1 << bits) - 1).astype(np.int64)
    deq = ((codes - z).astype(np.float32) * s).T
    rec.update(mismatches=int(np.sum(expected != codes)), bits=bits,
               max_abs_err=float(np.max(np.abs(w - deq))), sqnr_db=sqnr(w, deq))
    return deq


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("original")
    p.add_argument("quantized")
    args = p.parse_args()
    orig, quant = onnx.load(args.original), onnx.load(args.quantized)
    o_inits = {t.name: t for t in orig.graph.initializer}
    o_nodes = {n.output[0]: n for n in orig.graph.node}
    q_inits = {t.name: t for t in quant.graph.initializer}
    dq_of = {n.output[0]: n for n in quant.graph.node if n.op_type == "DequantizeLinear"}
    checked, mismatches, ok = [], 0, True
    for node in quant.graph.node:
        original = o_nodes.get(node.output[0])
        if original is None:
            continue
        for slot, name in enumerate(node.input):
            if node.op_type == "MatMulNBits" and slot == 1:
                kind, dq = "MatMulNBits", node
            elif name in dq_of and dq_of[name].input[0] in q_inits:
                kind, dq = "DequantizeLinear", dq_of[name]
            else:
                continue
            w_name = original.input[slot]
            w = arr(o_inits[w_name])
            rec = {"weight": w_name, "kind": kind, "node": node.output[0], "elements": int(w.size)}
            (check_nbits if kind == "MatMulNBits" else check_dq)(dq, q_inits, w, rec)
            mismatches += rec["mismatches"]
            ok &= rec["mismatches"] == 0 and rec.get("ort_equals_numpy", True)
            checked.append(rec)
    result = {"checked": checked, "mismatches": mismatches, "ok": bool(ok and checked)}
    if not result["ok"]:
        result["error"] = "no quantized weight found" if not checked else "stored integers differ from numpy"
    return result


if __name__ == "__main__":
    run(main)
