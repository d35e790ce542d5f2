"""Latency of `whittle compress` results against their originals, per scheme and runtime.

    .venv/bin/python bench/compress_latency.py [--whittle target/release/whittle] [--json OUT]

For each model (the digits fixture and the corpus CNNs) and each scheme (weight-only int8,
static int8 with a calibration set, fp16), runs `whittle compress IN -o OUT --json` and
prints one row: file size, latency in onnxruntime and tract before → after (compress's own
measurement: seeded inputs, 3 warm-up + 20 timed runs, median, one thread for onnxruntime),
agreement with the original, and compress's speed verdict. A result slower than its
original is printed as such — a finding to fix or explain, never hidden.

Calibration sets: the digits fixture ships its own (fixtures/digits_calib.npz) and is scored
on its labelled test set; the PP-OCR models get 16 synthetic text pages/lines
(bench/synthetic.py: on uniform noise the detector's output is ~0 and fidelity numbers are
noise), YOLOv8n 16 uniform [0, 1) images. Agreement is measured on those same samples, so it
measures fidelity to the original, not task accuracy.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from synthetic import text_images, uniform

ROOT = Path(__file__).resolve().parent.parent

# (label, path, input name, sample shape or None for a shipped calibration set)
MODELS = [
    ("digits CNN", "fixtures/digits_cnn.onnx", "input", None),
    ("PP-OCR cls", "corpus/rapidocr-onnxruntime/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", (3, 48, 192)),
    ("PP-OCRv4 det", "corpus/rapidocr-onnxruntime/ch_PP-OCRv4_det_infer.onnx", "x", (3, 320, 320)),
    ("PP-OCRv4 rec", "corpus/rapidocr-onnxruntime/ch_PP-OCRv4_rec_infer.onnx", "x", (3, 48, 320)),
    ("YOLOv8n (nudenet 320n)", "corpus/nudenet/320n.onnx", "images", (3, 320, 320)),
]

SCHEMES = [
    ("weight int8", ["--quantize", "int8", "--mode", "weight"]),
    ("static int8", ["--quantize", "int8", "--mode", "static"]),
    ("fp16", ["--quantize", "fp16"]),
]


def calib_for(tmp, label, name, shape):
    path = Path(tmp) / f"calib_{label.split()[0]}_{'x'.join(map(str, shape))}.npz"
    if not path.exists():
        data = text_images(16, shape[1], shape[2]) if label.startswith("PP-OCR") else uniform(16, shape)
        np.savez(path, **{name: data})
    return path


def run(exe, model, out, args):
    cmd = [str(exe), "compress", str(model), "-o", str(out), "--json", "--force", *args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1][:120] if p.stderr.strip() else "failed"}
    return json.loads(p.stdout)


def ms(v):
    return "n/a" if v is None else f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--whittle", default=str(ROOT / "target/release/whittle"))
    ap.add_argument("--json", help="write the raw reports here")
    args = ap.parse_args()
    exe = Path(args.whittle)
    if not exe.exists():
        sys.exit(f"{exe} is missing: cargo build --release -p whittle-cli")
    rows = []
    print("| model | scheme | file KB | onnxruntime ms | tract ms | agreement | verdict |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, rel, name, shape in MODELS:
            model = ROOT / rel
            if not model.exists():
                print(f"| {label} | missing: run scripts/fetch-corpus.sh | | | | | |")
                continue
            calib = ROOT / "fixtures/digits_calib.npz" if shape is None else calib_for(tmp, label, name, shape)
            for scheme, flags in SCHEMES:
                # Every scheme is compared on the same samples (the calibration set).
                extra = list(flags) + ["--calib", str(calib)]
                if shape is not None:
                    extra += ["--shape", f"{name}=1x{'x'.join(map(str, shape))}"]
                else:
                    extra += ["--eval", str(ROOT / "fixtures/digits_test.npz")]
                r = run(exe, model, Path(tmp) / "out.onnx", extra)
                rows.append({"model": label, "scheme": scheme, "report": r})
                if "error" in r:
                    print(f"| {label} | {scheme} | error: {r['error']} | | | | |", flush=True)
                    continue
                b, a = r["before"], r["after"]
                if a.get("accuracy") is not None:
                    agree = f"accuracy {b['accuracy']:.4f} → {a['accuracy']:.4f}"
                else:
                    g = r["agreement"]
                    top1 = g.get("top1_agreement")
                    agree = f"cosine {g['cosine']:.5f}" + (f", top-1 {top1:.3f}" if top1 is not None else "")
                slower = [f"{v['runtime']} {v['ratio']:.2f}×" for v in r["speed"] if v["slower"]]
                verdict = ("slower: " + ", ".join(slower)) if slower else "not slower"
                print(
                    f"| {label} | {scheme} | {b['file_bytes'] / 1024:.0f} → {a['file_bytes'] / 1024:.0f}"
                    f" | {ms(b['ort_ms'])} → {ms(a['ort_ms'])} | {ms(b['tract_ms'])} → {ms(a['tract_ms'])}"
                    f" | {agree} | {verdict} |",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
