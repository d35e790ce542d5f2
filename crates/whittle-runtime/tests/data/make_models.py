"""Regenerate the tiny test models and .npz files used by whittle-runtime's tests.

Run from anywhere with the workspace venv:
    /work/main/.venv/bin/python crates/whittle-runtime/tests/data/make_models.py
Everything is deterministic (fixed weights, no RNG): re-running reproduces the .onnx
files byte for byte; the .npz files hold the same arrays, but numpy stamps the current
time into their zip headers. The outputs are committed next to this script (each < 10 KB).
gemm_relu_io.npz holds onnxruntime's output for a fixed input, so the tract test has an
oracle even where no onnxruntime library is found at test time.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = [helper.make_opsetid("", 17)]


def save(model, name, check=True):
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(HERE, name))


def gemm_relu():
    # y[batch, 3] = Relu(x[batch, 4] @ W + b); batch is symbolic.
    w = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5) / 4.0
    b = np.array([1.0, 0.5, 1.5], dtype=np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm0"),
        helper.make_node("Relu", ["h"], ["y"], name="relu0"),
    ]
    graph = helper.make_graph(
        nodes,
        "gemm_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    save(helper.make_model(graph, opset_imports=OPSET), "gemm_relu.onnx")


def f16_matmul():
    # y[1, 4] = x[1, 8] @ W + b, all float16 (no Relu: every output stays informative).
    w = ((np.arange(32, dtype=np.float32).reshape(8, 4) - 16.0) / 16.0).astype(np.float16)
    b = np.array([0.5, -0.25, 0.0, 0.125], dtype=np.float16)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"], name="matmul0"),
        helper.make_node("Add", ["m", "b"], ["y"], name="add0"),
    ]
    graph = helper.make_graph(
        nodes,
        "f16_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 4])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    save(helper.make_model(graph, opset_imports=OPSET), "f16_matmul.onnx")


def int64_ops():
    # y = ids * 3 + 7 ; s = ReduceSum(y, axis 1). Two outputs, graph order (y, s).
    three = np.array(3, dtype=np.int64)
    seven = np.array(7, dtype=np.int64)
    axes = np.array([1], dtype=np.int64)
    nodes = [
        helper.make_node("Mul", ["ids", "three"], ["m"], name="mul0"),
        helper.make_node("Add", ["m", "seven"], ["y"], name="add0"),
        helper.make_node("ReduceSum", ["y", "axes"], ["s"], name="sum0", keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "int64_ops",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, "seq"])],
        [
            helper.make_tensor_value_info("y", TensorProto.INT64, [2, "seq"]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
        ],
        [
            numpy_helper.from_array(three, "three"),
            numpy_helper.from_array(seven, "seven"),
            numpy_helper.from_array(axes, "axes"),
        ],
    )
    save(helper.make_model(graph, opset_imports=OPSET), "int64_ops.onnx")


def dtypes():
    # One small op per dtype so both backends move f64, i32, u8, i8 and bool in and out.
    nodes = [
        helper.make_node("Mul", ["a_f64", "a_f64"], ["y_f64"], name="mul_f64"),
        helper.make_node("Add", ["b_i32", "b_i32"], ["y_i32"], name="add_i32"),
        helper.make_node("Cast", ["c_u8"], ["y_i8"], name="cast_u8_i8", to=TensorProto.INT8),
        helper.make_node("Cast", ["d_i8"], ["y_u8"], name="cast_i8_u8", to=TensorProto.UINT8),
        helper.make_node("Not", ["e_bool"], ["y_bool"], name="not_bool"),
    ]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        "dtypes",
        [
            vi("a_f64", TensorProto.DOUBLE, [2, 3]),
            vi("b_i32", TensorProto.INT32, [4]),
            vi("c_u8", TensorProto.UINT8, [4]),
            vi("d_i8", TensorProto.INT8, [4]),
            vi("e_bool", TensorProto.BOOL, [3]),
        ],
        [
            vi("y_f64", TensorProto.DOUBLE, [2, 3]),
            vi("y_i32", TensorProto.INT32, [4]),
            vi("y_i8", TensorProto.INT8, [4]),
            vi("y_u8", TensorProto.UINT8, [4]),
            vi("y_bool", TensorProto.BOOL, [3]),
        ],
    )
    save(helper.make_model(graph, opset_imports=OPSET), "dtypes.onnx")


def unsupported():
    # An op no backend knows; loading must fail with the node and op named.
    node = helper.make_node("NotARealOp", ["x"], ["y"], name="mystery_node", domain="com.example")
    graph = helper.make_graph(
        [node],
        "unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(
        graph, opset_imports=OPSET + [helper.make_opsetid("com.example", 1)]
    )
    save(model, "unsupported.onnx", check=False)


def npz_files():
    arrays = {
        "f32": (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5),
        "i64": np.array([-3, 0, 7, 1 << 40], dtype=np.int64),
        "u8": np.array([[0, 255], [17, 4]], dtype=np.uint8),
        "flags": np.array([True, False, True]),
        "half": np.array([0.5, -2.0, 65504.0], dtype=np.float16),
        "scalar": np.float64(3.25),
        # Fortran-ordered 2x3 f64: logical values are arange(6).reshape(2, 3).
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        "big_endian": np.array([1, 256, -2], dtype=">i4"),
    }
    np.savez(os.path.join(HERE, "numpy_plain.npz"), **arrays)
    np.savez_compressed(os.path.join(HERE, "numpy_compressed.npz"), **arrays)


def reference_outputs():
    # onnxruntime outputs for gemm_relu on a fixed input, so the tract test has an
    # oracle even when no onnxruntime library is found at test time.
    import onnxruntime as ort

    x = (np.arange(8, dtype=np.float32).reshape(2, 4) - 3.5) / 3.0
    sess = ort.InferenceSession(os.path.join(HERE, "gemm_relu.onnx"))
    (y,) = sess.run(None, {"x": x})
    np.savez(os.path.join(HERE, "gemm_relu_io.npz"), x=x, y=y)


if __name__ == "__main__":
    gemm_relu()
    f16_matmul()
    int64_ops()
    dtypes()
    unsupported()
    npz_files()
    reference_outputs()
    print("wrote", sorted(f for f in os.listdir(HERE) if not f.endswith(".py")))
