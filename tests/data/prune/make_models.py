"""Generate the small models the prune suite (tests/tests/prune.rs) uses.

    .venv/bin/python tests/data/prune/make_models.py

Deterministic (seeded numpy, no timestamps). Each "*_zero" model has some channels whose
producer weights, bias and every BatchNormalization gamma/beta of their group are exactly
zero, so those channels output exactly 0 after Relu/Clip. Pruning them by magnitude must
leave the outputs equal to the original's (the strongest check of the coupling logic):

  chain_zero.onnx      Conv(3->8)+BN+Relu -> Conv(8->6)+BN+Relu -> GlobalAveragePool ->
                       Flatten -> Gemm(6->8)+Relu -> Gemm(8->3).
                       zero: conv1 {1,5}, conv2 {2}, fc1 hidden {0,7}.  --ratio 0.25 --criterion l1
                       Carries value_info for every intermediate (onnx shape inference).
  concat_zero.onnx     convA(4->6)+BN+Relu and convB(4->6)+Relu joined by a residual Add,
                       Concat with convC(4->4)+Relu on the channel axis, per-channel Mul
                       [1,10,1,1], convD(10->5)+Relu, GlobalAveragePool, Flatten, Gemm(5->3).
                       zero: residual group {0,4}, convC {2}, convD {3}. --ratio 0.34 --criterion l1
  depthwise_zero.onnx  MobileNetV2 block: expand Conv(4->12)+BN+Clip(0,6) -> depthwise
                       Conv(group 12)+BN+Clip -> project Conv(12->4)+BN -> Add(input)
                       (residual with the graph input: that group is unprunable) ->
                       GlobalAveragePool -> Flatten -> Gemm(4->3).
                       zero: expand group {1,6,9}.                --ratio 0.25 --criterion l1
  split_zero.onnx      convA(4->6)+Relu and convB(4->4)+Relu concatenated (10 channels), then
                       Split [6, 4] and Slice [6:end] on the channel axis; convC(6->5) on the
                       first part, Mul(slice, second part) -> convD(4->5); Add(convC, convD)
                       -> Relu -> GlobalAveragePool -> Flatten -> Gemm(5->3).
                       zero: convA {2,5}, convB {1}, convC+convD {0}. --ratio 0.34 --criterion l1
  unknown_op.onnx      conv1(3->8)+Relu -> whittle.test::Mystery -> out1, and
                       conv2(3->6)+Relu -> conv3(6->4) -> out2, and conv4(3->6) -> Split [3, 3]
                       -> Add of the halves -> conv5(3->2) -> out3. conv1's group is unprunable
                       (unknown op); conv2's is prunable, and so is conv4's (its Split into
                       halves is tied back together by the Add: one 3-channel group).
                       Not runnable (custom op).
  paddle_zero.onnx     a Paddle-style export (opset 12, input x [N,3,H,W] with symbolic dims):
                       every weight in a Constant node, biases as Reshape(Constant, [1,C,1,1])
                       + Add, hardswish spelled Add/Clip/Mul/Div, an SE block (GAP -> se1 ->
                       Relu -> se2 -> HardSigmoid -> Mul). conv1(3->8)+BN+hardswish ->
                       conv2(8->8)+bias+Relu -> SE(8->4->8) -> conv3(8->6)+bias+Relu ->
                       ConvTranspose(6->4, 2x2/2)+bias+Relu -> GAP -> Flatten -> MatMul(4->3)
                       + Add. zero: conv1 {1,5}, conv2+se2 {2,6}, se1 {1}, conv3 {3}, the
                       ConvTranspose {2}. Prunable only after Constant nodes become initializers and
                       the bias Reshapes are folded. --ratio 0.25 --criterion l1
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
R = np.random.default_rng(7)


def w(name, *shape):
    return numpy_helper.from_array(R.normal(0, 0.5, shape).astype(np.float32), name)


def arr(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def bn(prefix, c, zero=()):
    gamma = R.uniform(0.5, 1.5, c).astype(np.float32)
    beta = R.normal(0, 0.2, c).astype(np.float32)
    mean = R.normal(0, 0.3, c).astype(np.float32)
    var = R.uniform(0.5, 1.5, c).astype(np.float32)
    gamma[list(zero)] = 0
    beta[list(zero)] = 0
    inits = [arr(f"{prefix}.scale", gamma), arr(f"{prefix}.bias", beta),
             arr(f"{prefix}.mean", mean), arr(f"{prefix}.var", var)]
    return inits, [f"{prefix}.scale", f"{prefix}.bias", f"{prefix}.mean", f"{prefix}.var"]


def conv(prefix, cin, cout, zero=(), k=3, group=1):
    wt = R.normal(0, 0.5, (cout, cin // group, k, k)).astype(np.float32)
    b = R.normal(0, 0.1, cout).astype(np.float32)
    wt[list(zero)] = 0
    b[list(zero)] = 0
    return [arr(f"{prefix}.weight", wt), arr(f"{prefix}.bias", b)]


def conv_node(prefix, x, out, group=1, k=3):
    return helper.make_node("Conv", [x, f"{prefix}.weight", f"{prefix}.bias"], [out], name=prefix,
                            kernel_shape=[k, k], pads=[k // 2] * 4, group=group)


def bn_node(prefix, x, out):
    return helper.make_node("BatchNormalization", [x] + bn_names(prefix), [out], name=prefix)


def bn_names(prefix):
    return [f"{prefix}.scale", f"{prefix}.bias", f"{prefix}.mean", f"{prefix}.var"]


def gemm(prefix, cin, cout, zero=()):
    wt = R.normal(0, 0.5, (cout, cin)).astype(np.float32)
    b = R.normal(0, 0.1, cout).astype(np.float32)
    wt[list(zero)] = 0
    b[list(zero)] = 0
    return [arr(f"{prefix}.weight", wt), arr(f"{prefix}.bias", b)]


def gemm_node(prefix, x, out):
    return helper.make_node("Gemm", [x, f"{prefix}.weight", f"{prefix}.bias"], [out], name=prefix,
                            transB=1)


def node(op, ins, outs, name, **attrs):
    return helper.make_node(op, ins, outs, name=name, **attrs)


def save(name, nodes, inits, inputs, outputs, opsets=(("", 17),), value_info=False):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                          producer_name="whittle-tests")
    m.ir_version = 8
    if value_info:
        m = onnx.shape_inference.infer_shapes(m)
    if all(d == "" for d, _ in opsets):
        onnx.checker.check_model(m, full_check=True)
    onnx.save(m, HERE / name)


def f32(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def chain_zero():
    inits = conv("conv1", 3, 8, zero=(1, 5)) + bn("bn1", 8, zero=(1, 5))[0]
    inits += conv("conv2", 8, 6, zero=(2,)) + bn("bn2", 6, zero=(2,))[0]
    inits += gemm("fc1", 6, 8, zero=(0, 7)) + gemm("fc2", 8, 3)
    nodes = [
        conv_node("conv1", "x", "c1"), bn_node("bn1", "c1", "b1"), node("Relu", ["b1"], ["r1"], "relu1"),
        conv_node("conv2", "r1", "c2"), bn_node("bn2", "c2", "b2"), node("Relu", ["b2"], ["r2"], "relu2"),
        node("GlobalAveragePool", ["r2"], ["gap"], "gap"), node("Flatten", ["gap"], ["flat"], "flatten"),
        gemm_node("fc1", "flat", "h"), node("Relu", ["h"], ["hr"], "relu3"), gemm_node("fc2", "hr", "y"),
    ]
    save("chain_zero.onnx", nodes, inits, [f32("x", "N", 3, 8, 8)], [f32("y", "N", 3)],
         value_info=True)


def concat_zero():
    inits = conv("convA", 4, 6, zero=(0, 4)) + bn("bnA", 6, zero=(0, 4))[0]
    inits += conv("convB", 4, 6, zero=(0, 4)) + conv("convC", 4, 4, zero=(2,))
    inits += [arr("scale", R.uniform(0.5, 2.0, (1, 10, 1, 1)))]
    inits += conv("convD", 10, 5, zero=(3,)) + gemm("fc", 5, 3)
    nodes = [
        conv_node("convA", "x", "a"), bn_node("bnA", "a", "ab"), node("Relu", ["ab"], ["ar"], "reluA"),
        conv_node("convB", "x", "b"), node("Relu", ["b"], ["br"], "reluB"),
        node("Add", ["ar", "br"], ["s"], "residual"),
        conv_node("convC", "x", "c"), node("Relu", ["c"], ["cr"], "reluC"),
        node("Concat", ["s", "cr"], ["cat"], "concat", axis=1),
        node("Mul", ["cat", "scale"], ["scaled"], "scale_mul"),
        conv_node("convD", "scaled", "d"), node("Relu", ["d"], ["dr"], "reluD"),
        node("GlobalAveragePool", ["dr"], ["gap"], "gap"), node("Flatten", ["gap"], ["flat"], "flatten"),
        gemm_node("fc", "flat", "y"),
    ]
    save("concat_zero.onnx", nodes, inits, [f32("x", "N", 4, 8, 8)], [f32("y", "N", 3)])


def depthwise_zero():
    zero = (1, 6, 9)
    inits = conv("expand", 4, 12, zero=zero, k=1) + bn("bn_e", 12, zero=zero)[0]
    inits += conv("dw", 12, 12, zero=zero, group=12) + bn("bn_d", 12, zero=zero)[0]
    inits += conv("project", 12, 4, k=1) + bn("bn_p", 4)[0] + gemm("fc", 4, 3)
    inits += [arr("six", 6.0), arr("zero", 0.0)]
    nodes = [
        conv_node("expand", "x", "e", k=1), bn_node("bn_e", "e", "eb"),
        node("Clip", ["eb", "zero", "six"], ["er"], "clip_e"),
        conv_node("dw", "er", "d", group=12), bn_node("bn_d", "d", "db"),
        node("Clip", ["db", "zero", "six"], ["dr"], "clip_d"),
        conv_node("project", "dr", "p", k=1), bn_node("bn_p", "p", "pb"),
        node("Add", ["pb", "x"], ["s"], "residual"),
        node("GlobalAveragePool", ["s"], ["gap"], "gap"), node("Flatten", ["gap"], ["flat"], "flatten"),
        gemm_node("fc", "flat", "y"),
    ]
    save("depthwise_zero.onnx", nodes, inits, [f32("x", "N", 4, 8, 8)], [f32("y", "N", 3)])


def split_zero():
    inits = conv("convA", 4, 6, zero=(2, 5)) + conv("convB", 4, 4, zero=(1,))
    inits += conv("convC", 6, 5, zero=(0,)) + conv("convD", 4, 5, zero=(0,)) + gemm("fc", 5, 3)
    inits += [numpy_helper.from_array(np.array(v, dtype=np.int64), k) for k, v in
              [("split", [6, 4]), ("starts", [6]), ("ends", [2**63 - 1]), ("axes", [1])]]
    nodes = [
        conv_node("convA", "x", "a"), node("Relu", ["a"], ["ar"], "reluA"),
        conv_node("convB", "x", "b"), node("Relu", ["b"], ["br"], "reluB"),
        node("Concat", ["ar", "br"], ["cat"], "concat", axis=1),
        node("Split", ["cat", "split"], ["s1", "s2"], "split", axis=1),
        node("Slice", ["cat", "starts", "ends", "axes"], ["s3"], "slice"),
        conv_node("convC", "s1", "c"),
        node("Mul", ["s3", "s2"], ["m"], "mul"), conv_node("convD", "m", "d"),
        node("Add", ["c", "d"], ["s"], "add"), node("Relu", ["s"], ["sr"], "relu"),
        node("GlobalAveragePool", ["sr"], ["gap"], "gap"), node("Flatten", ["gap"], ["flat"], "flatten"),
        gemm_node("fc", "flat", "y"),
    ]
    save("split_zero.onnx", nodes, inits, [f32("x", "N", 4, 8, 8)], [f32("y", "N", 3)])


def unknown_op():
    inits = conv("conv1", 3, 8) + conv("conv2", 3, 6) + conv("conv3", 6, 4)
    inits += conv("conv4", 3, 6) + conv("conv5", 3, 2)
    inits += [numpy_helper.from_array(np.array([3, 3], dtype=np.int64), "halves")]
    nodes = [
        conv_node("conv4", "x", "c4"),
        node("Split", ["c4", "halves"], ["h1", "h2"], "split", axis=1),
        node("Add", ["h1", "h2"], ["h"], "add"), conv_node("conv5", "h", "out3"),
        conv_node("conv1", "x", "c1"), node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Mystery", ["r1"], ["out1"], name="mystery", domain="whittle.test"),
        conv_node("conv2", "x", "c2"), node("Relu", ["c2"], ["r2"], "relu2"),
        conv_node("conv3", "r2", "out2"),
    ]
    save("unknown_op.onnx", nodes, inits, [f32("x", 1, 3, 8, 8)],
         [f32("out1", 1, 8, 8, 8), f32("out2", 1, 4, 8, 8), f32("out3", 1, 2, 8, 8)],
         opsets=(("", 17), ("whittle.test", 1)))



def paddle_zero():
    r = np.random.default_rng(21)
    nodes, n = [], [0]

    def const(name, a, dtype=np.float32):
        t = numpy_helper.from_array(np.asarray(a, dtype=dtype), name)
        nodes.append(helper.make_node("Constant", [], [name], name=f"Constant@{len(nodes)}",
                                      value=t))
        return name

    def op(kind, ins, **attrs):
        n[0] += 1
        out = f"{kind.lower()}_{n[0]}.tmp_0"
        nodes.append(helper.make_node(kind, ins, [out], name=f"p2o.{kind}.{n[0]}", **attrs))
        return out

    def conv(name, x, cin, cout, zero, k=3, bias=True):
        wt = r.normal(0, 0.5, (cout, cin, k, k)).astype(np.float32)
        wt[list(zero)] = 0
        y = op("Conv", [x, const(f"{name}_weights", wt)], kernel_shape=[k, k],
               pads=[k // 2] * 4)
        if not bias:
            return y
        b = r.normal(0, 0.1, cout).astype(np.float32)
        b[list(zero)] = 0
        shaped = op("Reshape", [const(f"{name}_offset", b),
                                const(f"{name}_shape", [1, cout, 1, 1], np.int64)])
        return op("Add", [y, shaped])

    def batch_norm(name, x, c, zero):
        g, b = r.uniform(0.5, 1.5, c), r.normal(0, 0.2, c)
        g[list(zero)], b[list(zero)] = 0, 0
        ps = [const(f"{name}_{k}", v) for k, v in
              [("scale", g), ("offset", b), ("mean", r.normal(0, 0.3, c)),
               ("variance", r.uniform(0.5, 1.5, c))]]
        return op("BatchNormalization", [x] + ps, epsilon=1e-5)

    def hardswish(x):
        clip = op("Clip", [op("Add", [x, const(f"three_{len(nodes)}", 3.0)]),
                           const(f"lo_{len(nodes)}", 0.0), const(f"hi_{len(nodes)}", 6.0)])
        return op("Div", [op("Mul", [x, clip]), const(f"six_{len(nodes)}", 6.0)])

    x = hardswish(batch_norm("bn1", conv("conv1", "x", 3, 8, (1, 5), bias=False), 8, (1, 5)))
    x = op("Relu", [conv("conv2", x, 8, 8, (2, 6))])
    se = op("Relu", [conv("se1", op("GlobalAveragePool", [x]), 8, 4, (1,), k=1)])
    se = op("HardSigmoid", [conv("se2", se, 4, 8, (2, 6), k=1)], alpha=0.2, beta=0.5)
    x = op("Relu", [conv("conv3", op("Mul", [x, se]), 8, 6, (3,))])
    # PP-OCR det's head: ConvTranspose (weight [C_in, C_out, k, k]) + Reshape'd bias.
    wt = r.normal(0, 0.5, (6, 4, 2, 2)).astype(np.float32)
    wt[:, 2] = 0
    b = r.normal(0, 0.1, 4).astype(np.float32)
    b[2] = 0
    up = op("ConvTranspose", [x, const("up_weights", wt)], kernel_shape=[2, 2], strides=[2, 2])
    shaped = op("Reshape", [const("up_offset", b), const("up_shape", [1, 4, 1, 1], np.int64)])
    x = op("Relu", [op("Add", [up, shaped])])
    flat = op("Flatten", [op("GlobalAveragePool", [x])], axis=1)
    fc = r.normal(0, 0.5, (4, 3)).astype(np.float32)
    y = op("Add", [op("MatMul", [flat, const("fc_weights", fc)]),
                   const("fc_offset", r.normal(0, 0.1, 3))])
    nodes.append(helper.make_node("Identity", [y], ["y"], name="p2o.Identity.0"))
    dims = ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"]
    save("paddle_zero.onnx", nodes, [], [f32("x", *dims)], [f32("y", "p2o.DynamicDimension.0", 3)],
         opsets=(("", 12),))


if __name__ == "__main__":
    chain_zero()
    concat_zero()
    depthwise_zero()
    split_zero()
    unknown_op()
    paddle_zero()
