"""Write the tiny models the opset-conversion tests use (tests/tests/opset.rs).

    .venv/bin/python tests/data/opset/make_models.py

Each model exercises one conversion rule at the opset before the change; models named
`*_ref.onnx` are hand-written equivalents at a newer opset for sources onnxruntime cannot
run (opset 6 broadcasting). Deterministic: fixed seeds, fixed producer; every model is
checked with onnx.checker, and each one not marked `ort=False` is run once in onnxruntime.
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

OUT = Path(__file__).resolve().parent
RNG = np.random.default_rng(20240607)
F = TP.FLOAT


def vi(name, dims, dtype=F):
    return helper.make_tensor_value_info(name, dtype, dims)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def node(op, inputs, outputs, name, **attrs):
    return helper.make_node(op, inputs, outputs, name=name, **attrs)


def model(name, opset, nodes, inputs, outputs, inits=(), check=True, ort=True):
    ops = [helper.make_opsetid("", opset)]
    if helper.find_min_ir_version_for(ops) < 4:  # IR 3: initializers are graph inputs too
        inputs = list(inputs) + [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in inits]
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=ops, producer_name="whittle-tests", producer_version="1")
    m.ir_version = max(helper.find_min_ir_version_for(ops), 3)
    if check:
        onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, str(OUT / f"{name}.onnx"))
    return name, ort


def models():
    yield model("squeeze_11", 11, [
        node("Squeeze", ["x"], ["s"], "squeeze", axes=[1]),
        node("Unsqueeze", ["s"], ["y"], "unsqueeze", axes=[0, -1]),
    ], [vi("x", [2, 1, 3])], [vi("y", [1, 2, 3, 1])])
    yield model("reduce_sum_11", 11, [
        node("ReduceSum", ["x"], ["a"], "sum_axis1", axes=[1], keepdims=0),
        node("ReduceSum", ["x"], ["b"], "sum_all"),
    ], [vi("x", [2, 3, 4])], [vi("a", [2, 4]), vi("b", [1, 1, 1])])
    reduce_ops = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                  "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
    yield model("reduce_13", 13, [
        node(op, ["x"], [f"y{i}"], op.lower(), axes=[-1], keepdims=i % 2) for i, op in enumerate(reduce_ops)
    ] + [node("Abs", ["x"], ["ax"], "abs"), node("ReduceLogSum", ["ax"], ["all"], "logsum_all")],
        [vi("x", [2, 3, 4])], [vi(f"y{i}", [2, 3, 1][: 2 + i % 2]) for i in range(len(reduce_ops))] + [vi("all", [1, 1, 1])])
    yield model("split_11", 11, [
        node("Split", ["x"], ["a", "b"], "split_sizes", axis=1, split=[1, 3]),
        node("Split", ["x"], ["c", "d"], "split_even", axis=-1),
    ], [vi("x", [2, 4, 6])], [vi("a", [2, 1, 6]), vi("b", [2, 3, 6]), vi("c", [2, 4, 3]), vi("d", [2, 4, 3])])
    yield model("clip_10", 10, [
        node("Clip", ["x"], ["a"], "clip_both", min=-0.5, max=0.25),
        node("Clip", ["x"], ["b"], "clip_max", max=0.1),
    ], [vi("x", [3, 4])], [vi("a", [3, 4]), vi("b", [3, 4])])
    yield model("pad_10", 10, [
        node("Pad", ["x"], ["a"], "pad_value", pads=[0, 1, 2, 0, 2, 1], value=1.5),
        node("Pad", ["x"], ["b"], "pad_reflect", mode="reflect", pads=[0, 0, 1, 0, 0, 2]),
        node("Pad", ["x"], ["c"], "pad_zero", pads=[1, 0, 0, 0, 0, 0]),
    ], [vi("x", [2, 3, 4])], [vi("a", [2, 6, 7]), vi("b", [2, 3, 7]), vi("c", [3, 3, 4])])
    yield model("upsample_9", 9, [
        node("Upsample", ["x", "s_int"], ["a"], "up_nearest", mode="nearest"),
        node("Upsample", ["x", "s_frac"], ["b"], "up_nearest_frac", mode="nearest"),
        node("Upsample", ["x", "s_int"], ["c"], "up_linear", mode="linear"),
    ], [vi("x", [1, 2, 3, 4])], [vi("a", [1, 2, 6, 12]), vi("b", [1, 2, 4, 10]), vi("c", [1, 2, 6, 12])],
        [init("s_int", np.array([1, 1, 2, 3], np.float32)), init("s_frac", np.array([1, 1, 1.5, 2.5], np.float32))])
    yield model("upsample_7", 7, [
        node("Upsample", ["x"], ["y"], "up_attr", mode="nearest", scales=[1.0, 1.0, 2.0, 2.0]),
    ], [vi("x", [1, 1, 2, 3])], [vi("y", [1, 1, 4, 6])])
    yield model("resize_10", 10, [
        node("Resize", ["x", "down"], ["a"], "down_nearest", mode="nearest"),
        node("Resize", ["x", "up"], ["b"], "up_linear", mode="linear"),
    ], [vi("x", [1, 1, 5, 7])], [vi("a", [1, 1, 3, 4]), vi("b", [1, 1, 10, 14])],
        [init("down", np.array([1, 1, 0.6, 0.6], np.float32)), init("up", np.array([1, 1, 2, 2], np.float32))])
    yield model("batchnorm_7", 7, [
        node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], "bn", spatial=1, epsilon=1e-3),
    ], [vi("x", [2, 3, 4, 4])], [vi("y", [2, 3, 4, 4])],
        [init("g", RNG.uniform(0.5, 1.5, 3).astype(np.float32)), init("b", RNG.normal(size=3).astype(np.float32)),
         init("m", RNG.normal(size=3).astype(np.float32)), init("v", RNG.uniform(0.5, 2, 3).astype(np.float32))])
    yield model("dropout_7", 7, [
        node("Dropout", ["x"], ["d", "mask"], "dropout", ratio=0.3),
        node("Relu", ["d"], ["y"], "relu"),
    ], [vi("x", [2, 5])], [vi("y", [2, 5])])
    yield model("softmax_11", 11, [
        node("Softmax", ["x"], ["a"], "softmax_axis1", axis=1),
        node("LogSoftmax", ["x"], ["b"], "logsoftmax_last", axis=-1),
        node("Hardmax", ["x"], ["c"], "hardmax_default"),
        node("Softmax", ["x"], ["d"], "softmax_axis0", axis=0),
    ], [vi("x", [2, 3, 4])], [vi(n, [2, 3, 4]) for n in "abcd"])
    yield model("slice_topk_9", 9, [
        node("Slice", ["x"], ["s"], "slice", starts=[1, 0], ends=[3, -1], axes=[0, 1]),
        node("TopK", ["x"], ["v", "i"], "topk", k=2),
    ], [vi("x", [4, 5])], [vi("s", [2, 4]), vi("v", [4, 2]), vi("i", [4, 2], TP.INT64)])
    # Opset 6 broadcasting: onnxruntime has no kernels for it, so the reference is a
    # hand-written opset-7 equivalent (B reshaped to align with A's trailing axes).
    b = RNG.normal(size=3).astype(np.float32)
    w, gw, gc = (RNG.normal(size=s).astype(np.float32) for s in [(4, 5), (3, 4), 3])
    bc = [vi("a", [2, 3, 4, 5])]
    yield model("broadcast_6", 6, [
        node("Add", ["a", "b"], ["s"], "add_axis1", broadcast=1, axis=1),
        node("Mul", ["s", "w"], ["y"], "mul_suffix", broadcast=1),
        node("Gemm", ["m", "gw", "gc"], ["z"], "gemm", broadcast=1, transB=1),
    ], bc + [vi("m", [2, 4])], [vi("y", [2, 3, 4, 5]), vi("z", [2, 3])],
        [init("b", b), init("w", w), init("gw", gw), init("gc", gc)], ort=False)
    yield model("broadcast_6_ref", 7, [
        node("Add", ["a", "b3"], ["s"], "add_axis1"),
        node("Mul", ["s", "w"], ["y"], "mul_suffix"),
        node("Gemm", ["m", "gw", "gc"], ["z"], "gemm", transB=1),
    ], bc + [vi("m", [2, 4])], [vi("y", [2, 3, 4, 5]), vi("z", [2, 3])],
        [init("b3", b.reshape(3, 1, 1)), init("w", w), init("gw", gw), init("gc", gc)])
    then_g = helper.make_graph([node("Squeeze", ["x"], ["t"], "then_squeeze", axes=[0])], "then", [], [vi("t", [3])])
    else_g = helper.make_graph([node("ReduceSum", ["x"], ["e"], "else_sum", axes=[0], keepdims=0)], "else", [], [vi("e", [3])])
    yield model("if_11", 11, [
        node("If", ["c"], ["y"], "branch", then_branch=then_g, else_branch=else_g),
    ], [vi("c", [], TP.BOOL), vi("x", [1, 3])], [vi("y", [3])])
    yield model("layernorm_17", 17, [
        node("LayerNormalization", ["x", "g", "b"], ["y"], "ln", axis=-1, epsilon=1e-5),
    ], [vi("x", [2, 3, 8])], [vi("y", [2, 3, 8])],
        [init("g", RNG.uniform(0.5, 1.5, 8).astype(np.float32)), init("b", RNG.normal(size=8).astype(np.float32))])
    yield model("gridsample_16", 16, [
        node("GridSample", ["x", "grid"], ["y"], "sample", mode="bicubic", align_corners=1),
    ], [vi("x", [1, 2, 4, 5]), vi("grid", [1, 3, 3, 2])], [vi("y", [1, 2, 3, 3])])
    yield model("scatter_9", 9, [
        node("Scatter", ["x", "idx", "upd"], ["y"], "scatter", axis=1),
    ], [vi("x", [2, 4]), vi("upd", [2, 2])], [vi("y", [2, 4])], [init("idx", np.array([[1, 3], [0, 2]], np.int64))])
    yield model("shape_15", 15, [
        node("Shape", ["x"], ["s"], "shape_tail", start=1),
        node("Shape", ["x"], ["t"], "shape_mid", start=-3, end=-1),
        node("Reshape", ["x", "flat"], ["y"], "reshape", allowzero=1),
    ], [vi("x", [2, 3, 4, 5])], [vi("s", [3], TP.INT64), vi("t", [2], TP.INT64), vi("y", [6, 20])],
        [init("flat", np.array([6, 20], np.int64))])
    # Refusals.
    yield model("dynamic_axes_13", 13, [
        node("Squeeze", ["x", "axes"], ["y"], "squeeze_dynamic"),
    ], [vi("x", [1, 3, 1]), vi("axes", [1], TP.INT64)], [vi("y", [3])])
    yield model("dropout_mask_7", 7, [
        node("Dropout", ["x"], ["y", "mask"], "dropout_with_mask"),
    ], [vi("x", [2, 3])], [vi("y", [2, 3]), vi("mask", [2, 3])])


def main():
    written = list(models())
    import onnxruntime as ort

    for name, runs in written:
        path = OUT / f"{name}.onnx"
        assert path.stat().st_size < 64 * 1024, name
        if runs:
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    print(f"wrote {len(written)} models to {OUT}")


if __name__ == "__main__":
    main()
