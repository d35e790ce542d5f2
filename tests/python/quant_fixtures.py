"""Small models (and calibration sets) the quantize suites build on the fly.

    quant_fixtures.py NAME OUT_DIR

NAME:
- `overflow`: y = (x * big) + MatMul(x, W) * 1e-3 with `big` = 1e5 (a constant outside the
  float16 range) and W ≈ 1000, so MatMul(x, W) exceeds 65504 once |x| ≳ 20; writes
  `overflow.onnx` and `overflow_calib.npz` (x uniform in [-100, 100], 16 samples).
- `subgraph`: y = If(cond, then: MatMul(x, W_then) with W_then an initializer of the then
  branch, else: MatMul(x, W_outer) with W_outer an initializer of the main graph); writes
  `subgraph.onnx`.

Everything is seeded; JSON lists the files written.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from _common import run


def save(model, path):
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def overflow(out):
    rng = np.random.default_rng(7)
    big = numpy_helper.from_array(np.full((4,), 1e5, np.float32), "big")
    w = numpy_helper.from_array((1000 + rng.uniform(-10, 10, (4, 4))).astype(np.float32), "W")
    milli = numpy_helper.from_array(np.array(1e-3, np.float32), "milli")
    nodes = [
        helper.make_node("Mul", ["x", "big"], ["scaled"], name="mul_big"),
        helper.make_node("MatMul", ["x", "W"], ["z"], name="matmul_big"),
        helper.make_node("Mul", ["z", "milli"], ["z_small"], name="mul_milli"),
        helper.make_node("Add", ["scaled", "z_small"], ["y"], name="add"),
    ]
    g = helper.make_graph(nodes, "overflow", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["N", 4])], [big, w, milli])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="quant_fixtures")
    files = [save(m, os.path.join(out, "overflow.onnx"))]
    calib = os.path.join(out, "overflow_calib.npz")
    np.savez(calib, x=rng.uniform(-100, 100, (16, 4)).astype(np.float32))
    return files + [calib]


def subgraph(out):
    rng = np.random.default_rng(11)
    w_then = numpy_helper.from_array(rng.standard_normal((8, 6)).astype(np.float32), "W_then")
    w_outer = numpy_helper.from_array(rng.standard_normal((8, 6)).astype(np.float32), "W_outer")
    y_t = helper.make_tensor_value_info("y_then", T.FLOAT, ["N", 6])
    y_e = helper.make_tensor_value_info("y_else", T.FLOAT, ["N", 6])
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "W_then"], ["y_then"], name="mm_then")],
                               "then", [], [y_t], [w_then])
    else_g = helper.make_graph([helper.make_node("MatMul", ["x", "W_outer"], ["y_else"], name="mm_else")],
                               "else", [], [y_e])
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)
    g = helper.make_graph([node], "subgraph",
                          [helper.make_tensor_value_info("cond", T.BOOL, []),
                           helper.make_tensor_value_info("x", T.FLOAT, ["N", 8])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["N", 6])], [w_outer])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="quant_fixtures")
    return [save(m, os.path.join(out, "subgraph.onnx"))]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("name", choices=["overflow", "subgraph"])
    p.add_argument("out_dir")
    args = p.parse_args()
    files = {"overflow": overflow, "subgraph": subgraph}[args.name](args.out_dir)
    return {"files": files}


if __name__ == "__main__":
    run(main)
