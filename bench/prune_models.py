"""`whittle prune` on the digits CNN (accuracy with and without least-squares
reconstruction) and on real architectures (parameters, MACs, groups, and whether the
result runs in onnxruntime), in one run.

    .venv/bin/python bench/prune_models.py [--whittle target/release/whittle] [--json OUT]

Digits: `whittle prune fixtures/digits_cnn.onnx -o OUT --ratio R --criterion C
--calib fixtures/digits_calib.npz [--reconstruct] --eval fixtures/digits_test.npz --json`
(accuracy on the 450 test samples, tract; 64 calibration samples feed the `activation`
criterion and the re-fit). Architectures: `whittle prune M -o OUT --ratio 0.3 [--shape …]
--json`, then the written model is run once in onnxruntime (Python, seeded input).
There is no Python tool to compare against: Torch-Pruning works on PyTorch modules, not on
ONNX files.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent

ARCHS = [
    ("ResNet (BasicBlocks, tests/data/prune)", "tests/data/prune/resnet.onnx", None),
    ("MobileNetV2 (tests/data/prune)", "tests/data/prune/mobilenetv2.onnx", None),
    ("YOLOv8n (nudenet 320n)", "corpus/nudenet/320n.onnx", "images=1x3x320x320"),
    ("PP-OCRv4 det", "corpus/rapidocr-onnxruntime/ch_PP-OCRv4_det_infer.onnx", "x=1x3x64x64"),
    ("PP-OCRv4 rec", "corpus/rapidocr-onnxruntime/ch_PP-OCRv4_rec_infer.onnx", "x=1x3x48x96"),
    ("PP-OCR cls", "corpus/rapidocr-onnxruntime/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x=1x3x48x192"),
]


def prune(exe, model, out, args):
    cmd = [str(exe), "prune", str(model), "-o", str(out), "--json", "--force", *args]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    r = json.loads(p.stdout)
    r["seconds"] = seconds
    return r


def runs_in_ort(path, shape):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    dims = [int(d) for d in shape.split("=")[1].split("x")] if shape else [d if isinstance(d, int) else 1 for d in i.shape]
    s.run(None, {i.name: np.random.default_rng(0).random(dims, dtype=np.float32)})
    return True


def digits(exe, tmp):
    m = ROOT / "fixtures/digits_cnn.onnx"
    calib, test = ROOT / "fixtures/digits_calib.npz", ROOT / "fixtures/digits_test.npz"
    rows = []
    print("| criterion | ratio | accuracy without re-fit | with `--reconstruct` | params after | MACs after |")
    print("|---|---|---|---|---|---|")
    for criterion in ["l1", "l2", "bn-scale", "activation"]:
        for ratio in ["0.3", "0.5"]:
            base = ["--ratio", ratio, "--criterion", criterion, "--calib", str(calib), "--eval", str(test)]
            plain = prune(exe, m, Path(tmp) / "p.onnx", base)
            refit = prune(exe, m, Path(tmp) / "r.onnx", base + ["--reconstruct"])
            rows.append({"criterion": criterion, "ratio": ratio, "plain": plain, "refit": refit})
            if "error" in plain or "error" in refit:
                print(f"| {criterion} | {ratio} | {plain.get('error', '')} | {refit.get('error', '')} | | |")
                continue
            a0 = plain["accuracy"]
            print(f"| {criterion} | {ratio} | {a0['before']:.4f} → {a0['after']:.4f} | "
                  f"{refit['accuracy']['after']:.4f} | {plain['after']['parameters']} | {plain['after']['macs']} |",
                  flush=True)
    return rows


def archs(exe, tmp):
    rows = []
    print()
    print("| model | params before → after | MACs before → after | groups pruned / skipped | runs in onnxruntime | prune s |")
    print("|---|---|---|---|---|---|")
    for label, rel, shape in ARCHS:
        m = ROOT / rel
        if not m.exists():
            print(f"| {label} | missing (scripts/fetch-corpus.sh) | | | | |")
            continue
        out = Path(tmp) / "a.onnx"
        r = prune(exe, m, out, ["--ratio", "0.3"] + (["--shape", shape] if shape else []))
        rows.append({"model": label, "report": r})
        if "error" in r:
            print(f"| {label} | error: {r['error']} | | | | |")
            continue
        groups = r["groups"]
        pruned = sum(1 for g in groups if g.get("channels_after", 0) < g.get("channels_before", 0))
        skipped = sum(1 for g in groups if g.get("skipped"))
        b, a = r["before"], r["after"]
        macs = f"{b['macs']:,} → {a['macs']:,}" if b.get("macs") and a.get("macs") else "unknown"
        ok = runs_in_ort(out, shape)
        print(f"| {label} | {b['parameters']:,} → {a['parameters']:,} | {macs} | {pruned} / {skipped} | "
              f"{'yes' if ok else 'no'} | {r['seconds']:.2f} |", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--whittle", default=str(ROOT / "target/release/whittle"))
    ap.add_argument("--json")
    args = ap.parse_args()
    if not Path(args.whittle).exists():
        sys.exit(f"{args.whittle} is missing: cargo build --release -p whittle-cli")
    with tempfile.TemporaryDirectory() as tmp:
        rows = {"digits": digits(args.whittle, tmp), "archs": archs(args.whittle, tmp)}
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
