"""How closely a quantized model follows its float original in onnxruntime (CPU).

    quant_agreement.py REFERENCE.onnx CANDIDATE.onnx [--npz DATA.npz [--input-key K]]
                       [--samples N] [--seed S] [--shape NAME=DIMS ...] [--class-axis A]
                       [--opt-level L]

Inputs: the npz's samples (key = input name, or --input-key for the first input), one sample
per run, at most --samples of them; else --samples seeded runs (uniform [-1, 1] floats,
integers in [0, 2), shapes as ort_run_compare.py makes them: --shape NAME=DIMS sets an input
or a symbolic dim, other symbolic dims are 1). The candidate gets the same inputs cast to its
own input types (a float16 model without --keep-io-types takes float16).

Per output (matched by position): `top1_agreement` — the share of positions whose argmax along
--class-axis (default -1; e.g. 1 for YOLO [N, 4+C, anchors] or segmentation maps) is the same
in both models, over all runs; `snr_db` (10·log10 Σref² / Σ(ref−cand)²), `cosine` and
`max_abs_diff` over all runs. Both models must run: a load or run error fails the script.
"""
import argparse

import numpy as np

from _common import ort_dtype, run, session
from ort_run_compare import concrete_shape, parse_shapes, random_input


def feeds_for(ref, args):
    shapes = parse_shapes(args.shape)
    if args.npz:
        data = np.load(args.npz)
        inputs = ref.get_inputs()
        keys = {i.name: (args.input_key if k == 0 and args.input_key else i.name) for k, i in enumerate(inputs)}
        count = min(args.samples, len(data[keys[inputs[0].name]]))
        for s in range(count):
            yield {i.name: np.asarray(data[keys[i.name]][s:s + 1]).astype(ort_dtype(i.type)) for i in inputs}
        return
    rng = np.random.default_rng(args.seed)
    for _ in range(args.samples):
        yield {i.name: random_input(rng, ort_dtype(i.type), concrete_shape(i, shapes), 2)
               for i in ref.get_inputs()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("reference")
    p.add_argument("candidate")
    p.add_argument("--npz")
    p.add_argument("--input-key")
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", action="append", default=[])
    p.add_argument("--class-axis", type=int, default=-1)
    p.add_argument("--opt-level", default="all", choices=["disable", "basic", "extended", "all"])
    args = p.parse_args()
    ref, cand = session(args.reference, args.opt_level), session(args.candidate, args.opt_level)
    cand_inputs = {i.name: ort_dtype(i.type) for i in cand.get_inputs()}
    stats = None
    runs = 0
    for feeds in feeds_for(ref, args):
        a = ref.run(None, feeds)
        b = cand.run(None, {n: feeds[n].astype(t) for n, t in cand_inputs.items()})
        if stats is None:
            stats = [{"agree": 0, "positions": 0, "signal": 0.0, "noise": 0.0, "dot": 0.0, "nb": 0.0,
                      "max": 0.0} for _ in a]
        for s, x, y in zip(stats, a, b):
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
            if x.shape != y.shape:
                raise ValueError(f"output shapes differ: {x.shape} vs {y.shape}")
            if x.ndim >= 1 and x.shape[args.class_axis] > 1:
                same = np.argmax(x, axis=args.class_axis) == np.argmax(y, axis=args.class_axis)
                s["agree"] += int(same.sum())
                s["positions"] += int(same.size)
            s["signal"] += float(np.sum(x * x))
            s["noise"] += float(np.sum((x - y) ** 2))
            s["dot"] += float(np.sum(x * y))
            s["nb"] += float(np.sum(y * y))
            s["max"] = max(s["max"], float(np.max(np.abs(x - y))) if x.size else 0.0)
        runs += 1
    outputs = []
    for o, s in zip(ref.get_outputs(), stats or []):
        denom = np.sqrt(s["signal"] * s["nb"])
        outputs.append({
            "name": o.name,
            "top1_agreement": s["agree"] / s["positions"] if s["positions"] else None,
            "positions": s["positions"],
            "snr_db": None if s["noise"] == 0 else 10 * np.log10(s["signal"] / s["noise"]) if s["signal"] else None,
            "cosine": s["dot"] / denom if denom else None,
            "max_abs_diff": s["max"],
        })
    return {"reference": args.reference, "candidate": args.candidate, "runs": runs, "outputs": outputs}


if __name__ == "__main__":
    run(main)
