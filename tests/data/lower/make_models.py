"""Generate the small models of tests/tests/lower.rs (run with the repo venv's python).

    .venv/bin/python tests/data/lower/make_models.py

- dq_weights.onnx: MatMul/Conv fed by DequantizeLinear of constant weights: int8 per-tensor,
  uint8 per-axis with zero points, int4 blocked (opset 21), and an fp16-scale one.
- if_const.onnx: an If whose condition is a constant initializer; the taken branch reads an
  outer value, returns one of its initializers directly.
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent
rng = np.random.default_rng(3)


def dq_weights():
    w8 = rng.integers(-128, 127, size=(8, 6), dtype=np.int8)
    wu = rng.integers(0, 255, size=(6, 4), dtype=np.uint8)
    w4 = rng.integers(-8, 7, size=(4, 8), dtype=np.int8)
    inits = [
        numpy_helper.from_array(w8, "w8"),
        numpy_helper.from_array(np.array(0.02, np.float32), "s8"),
        numpy_helper.from_array(wu, "wu"),
        numpy_helper.from_array(rng.uniform(0.01, 0.03, size=(4,)).astype(np.float32), "su"),
        numpy_helper.from_array(rng.integers(100, 150, size=(4,), dtype=np.uint8), "zu"),
        helper.make_tensor("w4", TensorProto.INT4, [4, 8], w4.flatten().tolist()),
        # blocked along axis 0 with block 2: scale [2, 8]
        numpy_helper.from_array(rng.uniform(0.05, 0.1, size=(2, 8)).astype(np.float32), "s4"),
        numpy_helper.from_array(np.array(0.03, np.float16), "sh"),
        numpy_helper.from_array(rng.integers(-100, 100, size=(8,), dtype=np.int8), "bh"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["w8", "s8"], ["w8f"], name="dq8"),
        helper.make_node("MatMul", ["x", "w8f"], ["h1"], name="mm1"),
        helper.make_node("DequantizeLinear", ["wu", "su", "zu"], ["wuf"], name="dqu", axis=1),
        helper.make_node("MatMul", ["h1", "wuf"], ["h2"], name="mm2"),
        helper.make_node("DequantizeLinear", ["w4", "s4"], ["w4f"], name="dq4", axis=0, block_size=2),
        helper.make_node("MatMul", ["h2", "w4f"], ["h3"], name="mm3"),
        helper.make_node("DequantizeLinear", ["bh", "sh"], ["bhf"], name="dqh"),
        helper.make_node("Cast", ["bhf"], ["bf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Add", ["h3", "bf"], ["y"], name="add"),
    ]
    g = helper.make_graph(
        nodes, "dq_weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], producer_name="whittle-tests")
    m.ir_version = 10
    onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, HERE / "dq_weights.onnx")


def if_const():
    then_g = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "k"], ["tb"], name="then_mul"),
            helper.make_node("Add", ["tb", "k"], ["then_out"], name="then_add"),
        ],
        "then", [], [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2, 3]),
                     helper.make_tensor_value_info("k", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.full((2, 3), 3.0, np.float32), "k")],
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["else_out"]), helper.make_node("Neg", ["x"], ["else_out2"])],
        "else", [], [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2, 3]),
                     helper.make_tensor_value_info("else_out2", TensorProto.FLOAT, [2, 3])],
    )
    nodes = [
        helper.make_node("Relu", ["x_in"], ["x"], name="relu"),
        helper.make_node("Sigmoid", ["x_in"], ["t"], name="sig"),
        helper.make_node("If", ["cond"], ["y", "y2"], name="if0", then_branch=then_g, else_branch=else_g),
        helper.make_node("Add", ["y", "t"], ["z"], name="after"),
    ]
    g = helper.make_graph(
        nodes, "if_const",
        [helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("y2", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.array(True), "cond")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="whittle-tests")
    m.ir_version = 8
    onnx.save_model(m, HERE / "if_const.onnx")


if __name__ == "__main__":
    dq_weights()
    if_const()
