"""Generate the architecture-sized models of tests/tests/prune_models.rs (issue #6).

    .venv/bin/python tests/data/prune/make_arch_models.py

No torch: the graphs are written with onnx.helper the way torch.onnx.export (opset 17,
eval mode, constant folding) writes them — BatchNormalization nodes, Clip(x, min, max)
with initializer bounds for ReLU6, SiLU as Sigmoid + Mul, Flatten + Gemm(transB=1) heads,
torch-style value and initializer names. Input `input` float32 [1,3,32,32]. Deterministic
(seeded numpy). Random weights (He-scaled), so outputs are meaningful numbers, not zeros.

  resnet.onnx            torchvision-style ResNet (BasicBlock): stem Conv 7x7/2 (no bias) + BN
                         + Relu + MaxPool 3/2; layer1 two identity blocks (8); layer2 a 1x1/2
                         downsample block + identity block (16); layer3 one downsample block
                         (24); GlobalAveragePool, Flatten, Gemm(24->10).
  mobilenetv2.onnx       MobileNetV2: stem Conv 3x3/2 + BN + ReLU6 (8); inverted residuals
                         (t, c, s) = (1, 4, 1) (6, 8, 2) (6, 8, 1) (6, 12, 2) (6, 12, 1): 1x1
                         expand + BN + ReLU6 (not for t=1), 3x3 depthwise + BN + ReLU6, 1x1
                         project + BN, residual Add when stride 1 and in == out; last 1x1 conv
                         (32) + BN + ReLU6, GlobalAveragePool, Flatten, Gemm(32->10).
  resnet_zero.onnx       the same graphs where every prunable channel group has exactly
  mobilenetv2_zero.onnx  floor(channels / 4) channels that are exactly zero: producer weight
  yolo_zero.onnx         rows (and biases) of every producer of the group and every BN gamma
                         and beta of the group (depthwise filters included) are 0. So l1
                         pruning at --ratio 0.25 removes exactly those and must give the
                         original outputs. arch_models.json lists each file's groups and zero indices.
  yolo_zero.onnx         YOLOv8n-like (BN fused: Conv with bias + SiLU): Conv/2 (8), Conv/2
                         (16), C2f(16, n=1, shortcut) [cv1 -> Split [8, 8] -> bottleneck on
                         the second half, Add -> Concat(3 x 8) -> cv2], Conv/2 (16),
                         C2f(16, n=2, shortcut) reusing the SAME Split sizes initializer (as
                         the exporter does for equal sizes), SPPF (cv1 8, 3 x MaxPool 5,
                         Concat, cv2 16), Resize x2 + Concat with the first C2f, C2f(32->16,
                         n=1, no shortcut, own Split sizes), two 1x1 detect convs -> outputs
                         `output0` [1,6,8,8] and `output1` [1,6,4,4]. Groups: C2f halves are
                         separate groups; the two C2f sharing a sizes initializer are not
                         tied (own zero indices): each is pruned on its own.
  split_equal_zero.onnx  Conv(3->8)+Relu -> Split into 2 with no sizes (equal halves must
                         stay equal: the halves are tied into one 4-channel group) -> Conv
                         (4->4) on each half -> Add -> Relu -> GlobalAveragePool, Flatten,
                         Gemm(4->10).
  slices_zero.onnx       opset 11 (IR 6): conv_a(3->12)+Relu -> Split with the `split`
                         attribute [4, 8]; conv_d(3->12)+Relu -> Slice [0:4] and [4:end];
                         four convs (->4) on the parts -> Sum -> Relu -> GlobalAveragePool,
                         Flatten, Gemm(4->10). Groups: each side of conv_a and of conv_d, and
                         the four convs tied by the Sum.
"""
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent


class Net:
    """Collects nodes and initializers; `zero` maps a channel-group key to zero indices."""

    def __init__(self, seed, zero):
        self.r = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.zero = zero  # None: no zero channels
        self.groups = {}  # key -> channel count (every prunable group)

    def z(self, key, c):
        """Zero indices of group `key` (c channels): floor(c/4) seeded random ones."""
        self.groups[key] = c
        if self.zero is None:
            return []
        if key not in self.zero:
            # Own generator: the weights are the same with and without zero channels.
            rng = np.random.default_rng(len(self.zero) + 100)
            self.zero[key] = sorted(rng.permutation(c)[: c // 4].tolist())
        return self.zero[key]

    def init(self, name, a, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(a, dtype=dtype), name))
        return name

    def node(self, op, ins, outs, name, **attrs):
        self.nodes.append(helper.make_node(op, ins, outs, name=name, **attrs))
        return outs[0]

    def conv(self, name, x, cin, cout, k, s=1, group=1, bias=False, zero=()):
        fan_in = cin // group * k * k
        w = self.r.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k))
        w[list(zero)] = 0
        ins = [x, self.init(f"{name}.weight", w)]
        if bias:
            b = self.r.normal(0, 0.1, cout)
            b[list(zero)] = 0
            ins.append(self.init(f"{name}.bias", b))
        tag = "/" + name.replace(".", "/")
        return self.node("Conv", ins, [f"{tag}/Conv_output_0"], f"{tag}/Conv",
                         dilations=[1, 1], group=group, kernel_shape=[k, k],
                         pads=[k // 2] * 4, strides=[s, s])

    def bn(self, name, x, c, zero=()):
        gamma = self.r.uniform(0.5, 1.5, c)
        beta = self.r.normal(0, 0.2, c)
        gamma[list(zero)] = 0
        beta[list(zero)] = 0
        ins = [x, self.init(f"{name}.weight", gamma), self.init(f"{name}.bias", beta),
               self.init(f"{name}.running_mean", self.r.normal(0, 0.3, c)),
               self.init(f"{name}.running_var", self.r.uniform(0.5, 1.5, c))]
        tag = "/" + name.replace(".", "/")
        return self.node("BatchNormalization", ins, [f"{tag}/BatchNormalization_output_0"],
                         f"{tag}/BatchNormalization", epsilon=1e-5, momentum=0.9)

    def act(self, op, name, x):
        tag = "/" + name.replace(".", "/")
        if op == "Relu":
            return self.node("Relu", [x], [f"{tag}/Relu_output_0"], f"{tag}/Relu")
        if op == "Relu6":
            return self.node("Clip", [x, "onnx::Clip_min", "onnx::Clip_max"],
                             [f"{tag}/Clip_output_0"], f"{tag}/Clip")
        sig = self.node("Sigmoid", [x], [f"{tag}/Sigmoid_output_0"], f"{tag}/Sigmoid")
        return self.node("Mul", [x, sig], [f"{tag}/Mul_output_0"], f"{tag}/Mul")

    def add(self, a, b, name):
        return self.node("Add", [a, b], [f"{name}/Add_output_0"], f"{name}/Add")

    def head(self, x, c, classes=10):
        gap = self.node("GlobalAveragePool", [x], ["/avgpool/GlobalAveragePool_output_0"],
                        "/avgpool/GlobalAveragePool")
        flat = self.node("Flatten", [gap], ["/Flatten_output_0"], "/Flatten", axis=1)
        w = self.r.normal(0, np.sqrt(1.0 / c), (classes, c))
        self.init("fc.weight", w)
        self.init("fc.bias", self.r.normal(0, 0.1, classes))
        return self.node("Gemm", [flat, "fc.weight", "fc.bias"], ["output"], "/fc/Gemm",
                         alpha=1.0, beta=1.0, transB=1)

    def save(self, file, outputs, opset=17):
        g = helper.make_graph(self.nodes, "main_graph",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                             [1, 3, 32, 32])],
                              outputs, initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="pytorch", producer_version="2.3.1")
        m.ir_version = 8 if opset >= 15 else 6
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, HERE / file)


def out(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def resnet(zero):
    n = Net(11, zero)
    z = n.z
    # Residual groups: every conv2 (and downsample) of a stage is tied to the stage input.
    x = n.conv("conv1", "input", 3, 8, 7, 2, zero=z("stage1", 8))
    x = n.bn("bn1", x, 8, zero=z("stage1", 8))
    x = n.act("Relu", "relu", x)
    x = n.node("MaxPool", [x], ["/maxpool/MaxPool_output_0"], "/maxpool/MaxPool",
               ceil_mode=0, dilations=[1, 1], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
               strides=[2, 2])
    cin = 8
    for layer, cout, blocks in [(1, 8, 2), (2, 16, 2), (3, 24, 1)]:
        for i in range(blocks):
            p = f"layer{layer}.{i}"
            stride = 2 if (layer > 1 and i == 0) else 1
            res = f"stage{layer}"
            y = n.conv(f"{p}.conv1", x, cin, cout, 3, stride, zero=z(f"{p}.conv1", cout))
            y = n.bn(f"{p}.bn1", y, cout, zero=z(f"{p}.conv1", cout))
            y = n.act("Relu", f"{p}.relu", y)
            y = n.conv(f"{p}.conv2", y, cout, cout, 3, zero=z(res, cout))
            y = n.bn(f"{p}.bn2", y, cout, zero=z(res, cout))
            short = x
            if stride != 1 or cin != cout:
                short = n.conv(f"{p}.downsample.0", x, cin, cout, 1, stride, zero=z(res, cout))
                short = n.bn(f"{p}.downsample.1", short, cout, zero=z(res, cout))
            y = n.add(y, short, f"/{p.replace('.', '/')}")
            x = n.act("Relu", f"{p}.relu_1", y)
            cin = cout
    n.head(x, cin)
    return n, [out("output", 1, 10)]


def mobilenetv2(zero):
    n = Net(12, zero)
    z = n.z
    n.init("onnx::Clip_min", np.float32(0.0))
    n.init("onnx::Clip_max", np.float32(6.0))
    x = n.conv("features.0.0", "input", 3, 8, 3, 2, zero=z("features.0", 8))
    x = n.bn("features.0.1", x, 8, zero=z("features.0", 8))
    x = n.act("Relu6", "features.0.2", x)
    cin, group_in = 8, "features.0"
    for i, (t, c, s) in enumerate([(1, 4, 1), (6, 8, 2), (6, 8, 1), (6, 12, 2), (6, 12, 1)]):
        p = f"features.{i + 1}.conv"
        hidden, j = cin * t, 0
        residual = s == 1 and cin == c
        y, hid_group = x, group_in
        if t != 1:
            hid_group = f"{p}.expand"
            y = n.conv(f"{p}.0.0", y, cin, hidden, 1, zero=z(hid_group, hidden))
            y = n.bn(f"{p}.0.1", y, hidden, zero=z(hid_group, hidden))
            y = n.act("Relu6", f"{p}.0.2", y)
            j = 1
        # Depthwise: its filters and BN belong to the group of its input channels.
        y = n.conv(f"{p}.{j}.0", y, hidden, hidden, 3, s, group=hidden, zero=z(hid_group, hidden))
        y = n.bn(f"{p}.{j}.1", y, hidden, zero=z(hid_group, hidden))
        y = n.act("Relu6", f"{p}.{j}.2", y)
        out_group = group_in if residual else f"{p}.project"
        y = n.conv(f"{p}.{j + 1}", y, hidden, c, 1, zero=z(out_group, c))
        y = n.bn(f"{p}.{j + 2}", y, c, zero=z(out_group, c))
        if residual:
            y = n.add(x, y, f"/features/features.{i + 1}")
        x, cin, group_in = y, c, out_group
    x = n.conv("features.6.0", x, cin, 32, 1, zero=z("features.6", 32))
    x = n.bn("features.6.1", x, 32, zero=z("features.6", 32))
    x = n.act("Relu6", "features.6.2", x)
    n.head(x, 32)
    return n, [out("output", 1, 10)]


def yolo(zero):
    n = Net(13, zero)
    z = n.z

    def cba(name, x, cin, cout, k, s=1, key=None, zero_idx=None):
        zi = zero_idx if zero_idx is not None else z(key or name, cout)
        y = n.conv(f"{name}.conv", x, cin, cout, k, s, bias=True, zero=zi)
        return n.act("SiLU", f"{name}.act", y)

    def c2f(name, x, cin, cout, nb, shortcut, split):
        h = cout // 2
        # Keyed by block, not by sizes tensor: C2f blocks sharing a sizes initializer are
        # still independent groups (whittle gives each Split its own copy when they differ).
        lo, hi = z(f"{name}.a", h), z(f"{name}.b", h)
        y = cba(f"{name}.cv1", x, cin, 2 * h, 1, zero_idx=lo + [h + i for i in hi])
        tag = "/" + name.replace(".", "/")
        parts = [f"{tag}/Split_output_0", f"{tag}/Split_output_1"]
        n.node("Split", [y, split], parts, f"{tag}/Split", axis=1)
        last = parts[1]
        for i in range(nb):
            m = f"{name}.m.{i}"
            b = cba(f"{m}.cv1", last, h, h, 3)
            # With the shortcut, cv2's channels are tied to the second half by the Add.
            b = cba(f"{m}.cv2", b, h, h, 3, zero_idx=hi if shortcut else None)
            last = n.add(last, b, "/" + m.replace(".", "/")) if shortcut else b
            parts.append(last)
        cat = n.node("Concat", parts, [f"{tag}/Concat_output_0"], f"{tag}/Concat", axis=1)
        return cba(f"{name}.cv2", cat, h * len(parts), cout, 1)

    n.init("onnx::Split_138", np.array([8, 8]), np.int64)
    n.init("onnx::Split_300", np.array([8, 8]), np.int64)
    x = cba("model.0", "input", 3, 8, 3, 2)
    x = cba("model.1", x, 8, 16, 3, 2)
    p2 = c2f("model.2", x, 16, 16, 1, True, "onnx::Split_138")
    x = cba("model.3", p2, 16, 16, 3, 2)
    x = c2f("model.4", x, 16, 16, 2, True, "onnx::Split_138")
    # SPPF: the same channels four times side by side.
    y = cba("model.5.cv1", x, 16, 8, 1)
    pools = [y]
    for i in range(3):
        pools.append(n.node("MaxPool", [pools[-1]], [f"/model.5/m_{i}/MaxPool_output_0"],
                            f"/model.5/m_{i}/MaxPool", ceil_mode=0, dilations=[1, 1],
                            kernel_shape=[5, 5], pads=[2, 2, 2, 2], strides=[1, 1]))
    cat = n.node("Concat", pools, ["/model.5/Concat_output_0"], "/model.5/Concat", axis=1)
    p5 = cba("model.5.cv2", cat, 32, 16, 1)
    n.init("/model.6/Constant_output_0", np.array([1, 1, 2, 2]), np.float32)
    up = n.node("Resize", [p5, "", "/model.6/Constant_output_0"], ["/model.6/Resize_output_0"],
                "/model.6/Resize", coordinate_transformation_mode="asymmetric",
                cubic_coeff_a=-0.75, mode="nearest", nearest_mode="floor")
    cat = n.node("Concat", [up, p2], ["/model.7/Concat_output_0"], "/model.7/Concat", axis=1)
    x = c2f("model.8", cat, 32, 16, 1, False, "onnx::Split_300")
    for i, (src, c) in enumerate([(x, 16), (p5, 16)]):
        w = n.r.normal(0, 0.3, (6, c, 1, 1))
        ins = [src, n.init(f"model.9.{i}.weight", w), n.init(f"model.9.{i}.bias",
                                                              n.r.normal(0, 0.1, 6))]
        n.node("Conv", ins, [f"output{i}"], f"/model.9/{i}/Conv", kernel_shape=[1, 1])
    return n, [out("output0", 1, 6, 8, 8), out("output1", 1, 6, 4, 4)]


def split_equal(zero):
    n = Net(14, zero)
    lo = n.z("conv_a halves", 4)
    x = n.conv("conv_a", "input", 3, 8, 3, bias=True, zero=lo + [4 + i for i in lo])
    x = n.act("Relu", "relu_a", x)
    halves = ["/Split_output_0", "/Split_output_1"]
    n.node("Split", [x], halves, "/Split", axis=1)
    y = [n.conv(f"conv_{k}", h, 4, 4, 3, bias=True, zero=n.z("conv_b+conv_c", 4))
         for k, h in zip("bc", halves)]
    x = n.act("Relu", "relu", n.add(y[0], y[1], ""))
    n.head(x, 4)
    return n, [out("output", 1, 10)]


def slices(zero):
    n = Net(15, zero)
    z = n.z
    lo, hi = z("conv_a[0:4]", 4), z("conv_a[4:12]", 8)
    a = n.act("Relu", "relu_a", n.conv("conv_a", "input", 3, 12, 3, bias=True,
                                       zero=lo + [4 + i for i in hi]))
    parts = ["/Split_output_0", "/Split_output_1"]
    n.node("Split", [a], parts, "/Split", axis=1, split=[4, 8])
    sink = z("sink", 4)
    y = [n.conv(f"conv_{k}", p, c, 4, 3, bias=True, zero=sink)
         for k, p, c in [("b", parts[0], 4), ("c", parts[1], 8)]]
    lo, hi = z("conv_d[0:4]", 4), z("conv_d[4:12]", 8)
    d = n.act("Relu", "relu_d", n.conv("conv_d", "input", 3, 12, 3, bias=True,
                                       zero=lo + [4 + i for i in hi]))
    for k, (start, end, c) in zip("ef", [(0, 4, 4), (4, 2**63 - 1, 8)]):
        ins = [d] + [n.init(f"/Slice_{k}/{w}", np.array([v]), np.int64)
                     for w, v in [("starts", start), ("ends", end), ("axes", 1)]]
        sl = n.node("Slice", ins, [f"/Slice_{k}_output_0"], f"/Slice_{k}")
        y.append(n.conv(f"conv_{k}", sl, c, 4, 3, bias=True, zero=sink))
    x = n.node("Sum", y, ["/Sum_output_0"], "/Sum")
    n.head(n.act("Relu", "relu", x), 4)
    return n, [out("output", 1, 10)]


def main():
    report = {}
    builds = [("resnet", resnet), ("mobilenetv2", mobilenetv2), ("yolo", yolo),
              ("split_equal", split_equal), ("slices", slices)]
    for name, build in builds:
        for zeroed in (False, True):
            if name in ("yolo", "split_equal", "slices") and not zeroed:
                continue  # the real YOLOv8n (corpus/nudenet/320n.onnx) covers random weights
            zero = {} if zeroed else None
            net, outputs = build(zero)
            file = f"{name}_zero.onnx" if zeroed else f"{name}.onnx"
            net.save(file, outputs, opset=11 if name == "slices" else 17)
            report[file] = {"groups": net.groups, "zero": zero}
    # What the tests assert against: each file's groups and zero channel indices.
    with open(HERE / "arch_models.json", "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
