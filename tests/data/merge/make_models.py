"""Generate the member models of tests/tests/merge*.rs (run with the repo venv's python).

    .venv/bin/python tests/data/merge/make_models.py

Deterministic (fixed seed; the external-data file is deleted before it is rewritten because
onnx appends to it). Every model passes onnx.checker (full_check) and runs in onnxruntime.

Three ensemble members, input `x` f32 [N,8], scores f32 [N,5], ai.onnx 17, IR 8:
- mlp_a.onnx: Gemm(8→16) → Relu → Gemm(16→5) → `scores`
- mlp_b.onnx: Gemm with mlp_a's first-layer weight and bias (the same bytes: a "variant"
  sharing weights) → Tanh → Gemm(16→5, its own) → `scores`
- mlp_c.onnx: MatMul+Add(8→12) → Sigmoid → MatMul+Add(12→5) → `logits` (another output
  name: matched by position)

Two members from "different exporters", different ai.onnx opsets, different input names:
- cnn13.onnx: opset 13 (IR 7), input `image` [N,1,8,8]: Conv → Relu → ReduceMean(axes
  attribute) → Gemm → `logits` [N,10]
- cnn18.onnx (+ cnn18.onnx.data): opset 18 (IR 8), input `input` [N,1,8,8]: Conv → Relu →
  ReduceMean(axes input) → Flatten → MatMul+Add → `logits` [N,10]; the two weight matrices
  (216 and 240 bytes) in the external file

Members whose class count only shows at run time (vote reads it with Shape → Gather):
- gelu_a.onnx, gelu_b.onnx: MatMul(8→5) → com.microsoft::Gelu → `y` declared f32[N,C]
  (shape inference does not follow other domains, so C stays a symbol)

For error cases:
- mlp_f64.onnx: like mlp_a with float64 input/weights (dtype mismatch on `x`)
- mlp_x16.onnx: input `x` f32 [N,16] (static shape mismatch on `x`)
- two_outputs.onnx: `x` → `scores` [N,5] and `features` [N,16] (outputs cannot be matched
  against a one-output member)
- dom_v1.onnx / dom_v2.onnx: a model-local function in domain `whittle.test`, imported at
  version 1 and 2 (colliding domain versions)

From the committed fixture:
- digits_perturbed.onnx: fixtures/digits_cnn.onnx with the final Gemm bias shifted by
  seeded noise (every other tensor byte-identical), for weight sharing and `diff`.
- digits_seed1.onnx, digits_seed2.onnx: fixtures/scripts/digits.py's network "trained" with
  weight seeds 1 and 2 instead of 1234 (other conv filters, refitted classifier): with
  digits_cnn.onnx, three ensemble members for fixtures/digits_test.npz.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
rng = np.random.default_rng(7)
F = TensorProto.FLOAT


def weights(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, name, inputs, outputs, inits, opset=17, ir=8, functions=(), extra_opsets=()):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=opsets, producer_name="whittle-tests",
                          producer_version="1", functions=list(functions))
    m.ir_version = ir
    onnx.checker.check_model(m, full_check=True)
    return m


def save(m, name, external=None):
    path = HERE / name
    if external is None:
        onnx.save_model(m, str(path))
        return
    data = HERE / external
    if data.exists():
        data.unlink()
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=external, size_threshold=128)
    data.chmod(0o644)


def vi(name, dtype, dims):
    return helper.make_tensor_value_info(name, dtype, dims)


W1, B1 = weights(16, 8), weights(16, scale=0.1)


def mlp_a():
    inits = [numpy_helper.from_array(W1, "w1"), numpy_helper.from_array(B1, "b1"),
             numpy_helper.from_array(weights(5, 16, scale=0.3), "w2"),
             numpy_helper.from_array(weights(5, scale=0.1), "b2")]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["scores"], name="fc2", transB=1)]
    return model(nodes, "mlp_a", [vi("x", F, ["N", 8])], [vi("scores", F, ["N", 5])], inits)


def mlp_b():
    inits = [numpy_helper.from_array(W1, "w1"), numpy_helper.from_array(B1, "b1"),
             numpy_helper.from_array(weights(5, 16, scale=0.3), "w2"),
             numpy_helper.from_array(weights(5, scale=0.1), "b2")]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Tanh", ["h"], ["t"], name="tanh"),
             helper.make_node("Gemm", ["t", "w2", "b2"], ["scores"], name="fc2", transB=1)]
    return model(nodes, "mlp_b", [vi("x", F, ["N", 8])], [vi("scores", F, ["N", 5])], inits)


def mlp_c():
    inits = [numpy_helper.from_array(weights(8, 12), "wa"),
             numpy_helper.from_array(weights(12, scale=0.1), "ba"),
             numpy_helper.from_array(weights(12, 5, scale=0.6), "wb"),
             numpy_helper.from_array(weights(5, scale=0.1), "bb")]
    nodes = [helper.make_node("MatMul", ["x", "wa"], ["p"], name="mm1"),
             helper.make_node("Add", ["p", "ba"], ["q"], name="add1"),
             helper.make_node("Sigmoid", ["q"], ["s"], name="sigmoid"),
             helper.make_node("MatMul", ["s", "wb"], ["u"], name="mm2"),
             helper.make_node("Add", ["u", "bb"], ["logits"], name="add2")]
    return model(nodes, "mlp_c", [vi("x", F, ["N", 8])], [vi("logits", F, ["N", 5])], inits)


def cnn13():
    inits = [numpy_helper.from_array(weights(4, 1, 3, 3), "conv.weight"),
             numpy_helper.from_array(weights(4, scale=0.1), "conv.bias"),
             numpy_helper.from_array(weights(10, 4), "fc.weight"),
             numpy_helper.from_array(weights(10, scale=0.1), "fc.bias")]
    nodes = [helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["c"], name="/conv/Conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
             helper.make_node("ReduceMean", ["r"], ["pooled"], name="/pool/ReduceMean",
                              axes=[2, 3], keepdims=0),
             helper.make_node("Gemm", ["pooled", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm",
                              transB=1)]
    return model(nodes, "torch_jit", [vi("image", F, ["N", 1, 8, 8])], [vi("logits", F, ["N", 10])],
                 inits, opset=13, ir=7)


def cnn18():
    inits = [numpy_helper.from_array(weights(6, 1, 3, 3), "p_conv_weight"),
             numpy_helper.from_array(weights(6, scale=0.1), "p_conv_bias"),
             numpy_helper.from_array(weights(6, 10), "p_fc_weight_t"),
             numpy_helper.from_array(weights(10, scale=0.1), "p_fc_bias"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes = [helper.make_node("Conv", ["input", "p_conv_weight", "p_conv_bias"], ["conv2d"],
                              name="node_conv2d", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv2d"], ["relu"], name="node_relu"),
             helper.make_node("ReduceMean", ["relu", "axes"], ["mean"], name="node_mean", keepdims=1),
             helper.make_node("Flatten", ["mean"], ["flat"], name="node_flatten"),
             helper.make_node("MatMul", ["flat", "p_fc_weight_t"], ["mm"], name="node_matmul"),
             helper.make_node("Add", ["mm", "p_fc_bias"], ["logits"], name="node_add")]
    return model(nodes, "main_graph", [vi("input", F, ["batch", 1, 8, 8])],
                 [vi("logits", F, ["batch", 10])], inits, opset=18, ir=8)


def gelu(name):
    inits = [numpy_helper.from_array(weights(8, 5), "w")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Gelu", ["h"], ["y"], name="gelu", domain="com.microsoft")]
    return model(nodes, name, [vi("x", F, ["N", 8])], [vi("y", F, ["N", "C"])], inits,
                 extra_opsets=[("com.microsoft", 1)])


def mlp_f64():
    d = TensorProto.DOUBLE
    inits = [numpy_helper.from_array(W1.astype(np.float64), "w1"),
             numpy_helper.from_array(weights(5, 16).astype(np.float64), "w2")]
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1", transB=1),
             helper.make_node("Gemm", ["h", "w2"], ["scores"], name="fc2", transB=1)]
    return model(nodes, "mlp_f64", [vi("x", d, ["N", 8])], [vi("scores", d, ["N", 5])], inits)


def mlp_x16():
    inits = [numpy_helper.from_array(weights(5, 16), "w")]
    nodes = [helper.make_node("Gemm", ["x", "w"], ["scores"], name="fc", transB=1)]
    return model(nodes, "mlp_x16", [vi("x", F, ["N", 16])], [vi("scores", F, ["N", 5])], inits)


def two_outputs():
    inits = [numpy_helper.from_array(W1, "w1"), numpy_helper.from_array(weights(5, 16), "w2")]
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["features"], name="fc1", transB=1),
             helper.make_node("Gemm", ["features", "w2"], ["scores"], name="fc2", transB=1)]
    return model(nodes, "two_outputs", [vi("x", F, ["N", 8])],
                 [vi("scores", F, ["N", 5]), vi("features", F, ["N", 16])], inits)


def dom(version):
    body = [helper.make_node("Relu", ["a"], ["b"])]
    fn = helper.make_function("whittle.test", "MyRelu", ["a"], ["b"], body,
                              [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("MyRelu", ["x"], ["scores"], name="f", domain="whittle.test")]
    return model(nodes, f"dom_v{version}", [vi("x", F, ["N", 5])], [vi("scores", F, ["N", 5])], [],
                 functions=[fn], extra_opsets=[("whittle.test", version)])


def digits_perturbed():
    m = onnx.load(str(ROOT / "fixtures/digits_cnn.onnx"))
    gemm = next(n for n in m.graph.node if n.op_type == "Gemm")
    bias = next(t for t in m.graph.initializer if t.name == gemm.input[2])
    b = numpy_helper.to_array(bias)
    shifted = (b + rng.uniform(-0.5, 0.5, b.shape)).astype(b.dtype)
    bias.CopyFrom(numpy_helper.from_array(shifted, bias.name))
    onnx.checker.check_model(m, full_check=True)
    return m


def digits_seed(seed):
    sys.path.insert(0, str(ROOT / "fixtures/scripts"))
    import digits

    digits.WEIGHT_SEED = seed
    x_train, _, y_train, _ = digits.load_splits()
    m = digits.build_graph(digits.build_weights(x_train, y_train))
    onnx.checker.check_model(m, full_check=True)
    return m


def main():
    import onnxruntime as ort
    written = {
        "mlp_a.onnx": mlp_a(), "mlp_b.onnx": mlp_b(), "mlp_c.onnx": mlp_c(),
        "cnn13.onnx": cnn13(), "mlp_f64.onnx": mlp_f64(), "mlp_x16.onnx": mlp_x16(),
        "two_outputs.onnx": two_outputs(), "dom_v1.onnx": dom(1), "dom_v2.onnx": dom(2),
        "digits_perturbed.onnx": digits_perturbed(),
        "digits_seed1.onnx": digits_seed(1), "digits_seed2.onnx": digits_seed(2),
    }
    c18 = cnn18()
    written.update({"gelu_a.onnx": gelu("gelu_a"), "gelu_b.onnx": gelu("gelu_b")})
    for name, m in written.items():
        save(m, name)
    save(c18, "cnn18.onnx", external="cnn18.onnx.data")
    for name in [*written, "cnn18.onnx"]:
        path = HERE / name
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert path.stat().st_size < 1 << 20, name
    print("wrote", ", ".join([*written, "cnn18.onnx", "cnn18.onnx.data"]))


if __name__ == "__main__":
    main()
