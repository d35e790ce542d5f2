"""Generate the small models the quantize-subgraphs suite (tests/tests/quantize_subgraphs.rs)
uses.

    .venv/bin/python tests/data/quantize/make_models.py

Deterministic (seeded numpy, no timestamps).

  if_weights.onnx        inputs cond bool [] and x float32 [1, 16];
                         h = Relu(x · W0[16, 32] + b0) in the main graph, then
                         y = If(cond,
                                then: Relu(Gemm(h, Wt[16, 32], bt, transB=1)) · Wt2[16, 16],
                                else: Reshape(h, [1, 2, 4, 4]) → Conv(Wc[4, 2, 3, 3], bc)
                                      → Reshape [1, 16]).
                         Every branch weight is a constant of its branch, so static and
                         fp16 quantization have weights to rewrite inside the bodies.
  if_weights_calib.npz   32 calibration samples: x [32, 1, 16] uniform [-1, 1], cond [32]
                         alternating True/False (both branches run).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def init(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def if_weights():
    rng = np.random.default_rng(5)
    w = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)  # noqa: E731
    then_b = helper.make_graph(
        [
            helper.make_node("Gemm", ["h", "Wt", "bt"], ["t1"], name="then_gemm", transB=1),
            helper.make_node("Relu", ["t1"], ["t2"], name="then_relu"),
            helper.make_node("MatMul", ["t2", "Wt2"], ["t"], name="then_matmul"),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 16])],
        [init("Wt", w(16, 32)), init("bt", w(16)), init("Wt2", w(16, 16))],
    )
    else_b = helper.make_graph(
        [
            helper.make_node("Reshape", ["h", "shape4"], ["e1"], name="else_reshape"),
            helper.make_node("Conv", ["e1", "Wc", "bc"], ["e2"], name="else_conv"),
            helper.make_node("Reshape", ["e2", "shape2"], ["e"], name="else_flatten"),
        ],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 16])],
        [
            init("Wc", w(4, 2, 3, 3)),
            init("bc", w(4)),
            numpy_helper.from_array(np.array([1, 2, 4, 4], np.int64), "shape4"),
            numpy_helper.from_array(np.array([1, 16], np.int64), "shape2"),
        ],
    )
    main = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W0"], ["m"], name="main_matmul"),
            helper.make_node("Add", ["m", "b0"], ["a"], name="main_add"),
            helper.make_node("Relu", ["a"], ["h"], name="main_relu"),
            helper.make_node("If", ["cond"], ["y"], name="branch",
                             then_branch=then_b, else_branch=else_b),
        ],
        "if_weights",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [init("W0", w(16, 32)), init("b0", w(32))],
    )
    model = helper.make_model(main, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="whittle-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    onnx.save(if_weights(), os.path.join(HERE, "if_weights.onnx"))
    rng = np.random.default_rng(6)
    np.savez(os.path.join(HERE, "if_weights_calib.npz"),
             x=rng.uniform(-1, 1, (32, 1, 16)).astype(np.float32),
             cond=np.array([i % 2 == 0 for i in range(32)]))


if __name__ == "__main__":
    main()
