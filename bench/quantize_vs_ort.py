"""whittle quantize vs onnxruntime.quantization, side by side: accuracy, size, latency, time.

    .venv/bin/python bench/quantize_vs_ort.py [--whittle target/release/whittle] [--corpus]
                                              [--runs 200] [--json OUT.json]

Digits (fixtures/digits_cnn.onnx): accuracy on digits_test.npz (450 samples) of the float
model and of every quantized one, all run in onnxruntime 1.32 (CPU, one thread); static mode
on both sides uses the same calibration set (digits_calib.npz, 64 samples) and options
(QDQ, uint8 activations, int8 per-channel weights, min/max). onnxruntime gets the original
model and, separately, the model after its own `quant_pre_process` (BatchNorm fused, as
whittle's clean-up does before static quantization).

--corpus adds corpus CNNs: nudenet 320n (uniform [0, 1) images), PP-OCRv4 det (synthetic
text pages, bench/synthetic.py — on noise the detector outputs ~0 and fidelity numbers mean
nothing), rec (rendered text lines, `text_lines`: needs Pillow) and cls (text lines, every
other one upside down): static int8 with 16 calibration samples on both sides, then top-1
agreement (det: the text/no-text decision at 0.3 per pixel; rec: per time step) and SNR
against the float model over 48 other samples of the same kind (cls: 400, as one flip of 48
would be 2%; rec: 192, 7,680 time steps, as its flips near 0.5% are a few dozen and 48 lines
move the rate by ±0.1% per flip), and weight-only int8 (whittle), rounded to nearest, with
`--gptq`, and with the accuracy recipe `--gptq --bias-correction --min-elements 4096` (tiny
weights — the stem convolutions, under 1% of the bytes — stay float), all with the same 16
calibration samples.

Times are end to end: the median wall time of three runs of the command (`whittle quantize …`
as a process; onnxruntime's `tests/python/ort_quantize_ref.py` as a process: interpreter
start, imports, quantization, save). Latency: median of --runs single-sample runs after 10 warm-up runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import text_images, text_lines  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
REF = os.path.join(ROOT, "tests/python/ort_quantize_ref.py")


def timed(cmd, repeat=3):
    """Median wall time of `repeat` runs of `cmd` (both tools alike: one run is at the mercy of
    page-cache and scheduler noise), and the last run's stdout."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-400:]}")
    return statistics.median(times), r.stdout


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.log_severity_level = 4
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def outputs(path, xs):
    s = session(path)
    i = s.get_inputs()[0]
    want = np.float16 if i.type == "tensor(float16)" else np.float32
    return [s.run(None, {i.name: x.astype(want)})[0].astype(np.float32) for x in xs]


def latency(path, x, runs):
    s = session(path)
    i = s.get_inputs()[0]
    x = x.astype(np.float16 if i.type == "tensor(float16)" else np.float32)
    for _ in range(10):
        s.run(None, {i.name: x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, {i.name: x})
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def top1(outs, ref, axis):
    agree = total = 0
    for a, b in zip(outs, ref):
        same = np.argmax(a, axis=axis) == np.argmax(b, axis=axis)
        agree += int(same.sum())
        total += same.size
    return agree / total


def snr_db(outs, ref):
    sig = sum(float(np.sum(b.astype(np.float64) ** 2)) for b in ref)
    err = sum(float(np.sum((a.astype(np.float64) - b) ** 2)) for a, b in zip(outs, ref))
    return float("inf") if err == 0 else 10 * np.log10(sig / err)


def row(name, path, seconds, xs, ref, labels, axis, runs):
    outs = outputs(path, xs)
    if axis is None:  # a probability map: agreement of the thresholded decision
        agree = float(np.mean([np.mean((a > 0.3) == (b > 0.3)) for a, b in zip(outs, ref)]))
    else:
        agree = top1(outs, ref, axis)
    r = {"name": name, "bytes": os.path.getsize(path), "seconds": seconds, "snr_db": snr_db(outs, ref),
         "top1_vs_float": agree, "latency_ms": latency(path, xs[0], runs)}
    if labels is not None:
        r["accuracy"] = float(np.mean([int(np.argmax(o)) == int(y) for o, y in zip(outs, labels)]))
    return r


def whittle(exe, model, out, args):
    return timed([exe, "quantize", model, "-o", out, *args])[0]


def ref(model, out, args):
    return timed([PY, REF, model, out, *args])[0]


def digits(exe, tmp, runs):
    m = os.path.join(ROOT, "fixtures/digits_cnn.onnx")
    calib = os.path.join(ROOT, "fixtures/digits_calib.npz")
    test = np.load(os.path.join(ROOT, "fixtures/digits_test.npz"))
    xs = [test["input"][k:k + 1] for k in range(len(test["input"]))]
    labels = test["label"]
    ref_out = outputs(m, xs)
    p = lambda n: os.path.join(tmp, n)  # noqa: E731
    rows = [row("float32", m, None, xs, ref_out, labels, -1, runs)]
    cases = [
        ("whittle static int8 (QDQ, per-channel, minmax)", "w_static.onnx",
         lambda o: whittle(exe, m, o, ["--mode", "static", "--calib", calib, "--no-measure"])),
        ("onnxruntime quantize_static (same options)", "o_static.onnx",
         lambda o: ref(m, o, ["--mode", "static", "--calib", calib, "--per-channel"])),
        ("onnxruntime quantize_static after quant_pre_process", "o_static_pre.onnx",
         lambda o: ref(m, o, ["--mode", "static", "--calib", calib, "--per-channel", "--preprocess"])),
        ("whittle static int8, entropy", "w_static_kl.onnx",
         lambda o: whittle(exe, m, o, ["--mode", "static", "--calib", calib, "--calib-method", "entropy", "--no-measure"])),
        ("whittle static int8, --format qoperator (QLinearConv)", "w_static_qop.onnx",
         lambda o: whittle(exe, m, o, ["--mode", "static", "--calib", calib, "--format", "qoperator", "--no-measure"])),
        ("whittle static int8, --bias-correction", "w_static_bc.onnx",
         lambda o: whittle(exe, m, o, ["--mode", "static", "--calib", calib, "--bias-correction", "--no-measure"])),
        ("whittle weight int8 per-channel", "w_weight.onnx", lambda o: whittle(exe, m, o, [])),
        ("whittle weight int4 block 32", "w_int4.onnx", lambda o: whittle(exe, m, o, ["--dtype", "int4", "--block-size", "32"])),
        ("whittle weight int4 per-channel", "w_int4pc.onnx", lambda o: whittle(exe, m, o, ["--dtype", "int4"])),
        ("whittle weight int4 per-channel, --bias-correction", "w_int4bc.onnx",
         lambda o: whittle(exe, m, o, ["--dtype", "int4", "--calib", calib, "--bias-correction"])),
        ("whittle weight int4 block 32, --gptq", "w_int4g.onnx",
         lambda o: whittle(exe, m, o, ["--dtype", "int4", "--block-size", "32", "--gptq", "--calib", calib, "--no-measure"])),
        ("whittle weight int4 per-channel, --gptq", "w_int4pcg.onnx",
         lambda o: whittle(exe, m, o, ["--dtype", "int4", "--gptq", "--calib", calib, "--no-measure"])),
        ("whittle dynamic (MatMulInteger; Conv float)", "w_dyn.onnx", lambda o: whittle(exe, m, o, ["--mode", "dynamic"])),
        ("onnxruntime quantize_dynamic (ConvInteger)", "o_dyn.onnx", lambda o: ref(m, o, ["--mode", "dynamic", "--per-channel"])),
        ("whittle fp16", "w_fp16.onnx", lambda o: whittle(exe, m, o, ["--mode", "fp16", "--keep-io-types"])),
        ("onnxruntime convert_float_to_float16", "o_fp16.onnx", lambda o: ref(m, o, ["--mode", "fp16", "--keep-io-types"])),
    ]
    for name, file, make in cases:
        seconds = make(p(file))
        rows.append(row(name, p(file), seconds, xs, ref_out, labels, -1, runs))
    return rows


def corpus(exe, tmp, runs):
    rows = []
    specs = [("nudenet/320n.onnx", "images", (1, 3, 320, 320), 1, 48),
             ("rapidocr-onnxruntime/ch_PP-OCRv4_det_infer.onnx", "x", (1, 3, 320, 320), None, 48),
             ("rapidocr-onnxruntime/ch_PP-OCRv4_rec_infer.onnx", "x", (1, 3, 48, 320), -1, 192),
             ("rapidocr-onnxruntime/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", (1, 3, 48, 192), -1, 400)]
    for rel, name, shape, axis, n_eval in specs:
        m = os.path.join(ROOT, "corpus", rel)
        if not os.path.exists(m):
            continue
        n = 16 + n_eval
        if "cls_infer" in rel:
            # Text lines, every other one upside down: what the orientation classifier sorts.
            data = text_lines(n, shape[2], shape[3], seed=3)
            data[1::2] = data[1::2, :, ::-1, ::-1]
        elif "rec_infer" in rel:
            data = text_lines(n, shape[2], shape[3])
        elif "rapidocr" in rel:
            data = text_images(n, shape[2], shape[3])
        else:
            data = np.random.default_rng(0).uniform(0, 1, (n, *shape[1:])).astype(np.float32)
        calib = os.path.join(tmp, "calib.npz")
        np.savez(calib, **{name: data[:16]})
        xs = [data[16 + k:17 + k] for k in range(n_eval)]
        ref_out = outputs(m, xs)
        shape_arg = f"{name}={'x'.join(map(str, shape))}"
        tag = os.path.basename(rel)
        out = lambda n: os.path.join(tmp, n)  # noqa: E731
        rows.append(row(f"{tag} float32", m, None, xs, ref_out, None, axis, runs))
        cases = [
            ("whittle static int8 (tract calibration)", "cs_w.onnx",
             lambda o: whittle(exe, m, o, ["--mode", "static", "--calib", calib, "--shape", shape_arg, "--no-measure",
                                           "--runtime", "tract"])),
            ("whittle static int8 (onnxruntime calibration)", "cs_wo.onnx",
             lambda o: whittle(exe, m, o, ["--mode", "static", "--calib", calib, "--shape", shape_arg, "--no-measure",
                                           "--runtime", "onnxruntime"])),
            ("onnxruntime quantize_static", "cs_o.onnx",
             lambda o: ref(m, o, ["--mode", "static", "--calib", calib, "--per-channel"])),
            ("whittle weight int8 per-channel", "cw_w.onnx", lambda o: whittle(exe, m, o, [])),
            ("whittle weight int8 per-channel --gptq", "cw_g.onnx",
             lambda o: whittle(exe, m, o, ["--gptq", "--calib", calib, "--no-measure"])),
            ("whittle weight int8 per-channel --gptq --bias-correction --min-elements 4096", "cw_r.onnx",
             lambda o: whittle(exe, m, o, ["--gptq", "--bias-correction", "--min-elements", "4096",
                                           "--calib", calib, "--no-measure"])),
        ]
        for label, file, make in cases:
            seconds = make(out(file))
            rows.append(row(f"{tag} {label}", out(file), seconds, xs, ref_out, None, axis, runs))
    return rows


def table(rows):
    lines = ["| model | accuracy | top-1 vs float | SNR dB vs float | bytes | latency ms | quantize s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['accuracy']:.4f}" if "accuracy" in r else "-"
        sec = f"{r['seconds']:.2f}" if r["seconds"] is not None else "-"
        snr = "∞" if r["snr_db"] == float("inf") else f"{r['snr_db']:.1f}"
        lines.append(f"| {r['name']} | {acc} | {r['top1_vs_float'] * 100:.2f}% | {snr} | {r['bytes']} | "
                     f"{r['latency_ms']:.3f} | {sec} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--whittle", default=os.path.join(ROOT, "target/release/whittle"))
    p.add_argument("--corpus", action="store_true")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = digits(args.whittle, tmp, args.runs)
        if args.corpus:
            rows += corpus(args.whittle, tmp, max(args.runs // 10, 10))
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
