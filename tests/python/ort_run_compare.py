"""Run two ONNX models on the same inputs in onnxruntime (CPU) and compare their outputs.

    ort_run_compare.py REFERENCE.onnx CANDIDATE.onnx [--seed N] [--shape NAME=DIMS ...]
                       [--inputs FILE.npz | --npz FILE.npz [--npz-key-map INPUT=KEY ...]]
                       [--atol X] [--int-high N] [--opt-level disable|basic|extended|all]

Inputs come from the reference model's input types. Any input not found in the npz is
generated from a seeded numpy Generator (--seed, default 0), in input order: floats uniform
[-1, 1], integers uniform in [0, --int-high) (default 2, so token-type ids, masks and
indices into any axis of length >= 2 stay valid), bool fair coin, strings from a small word list.
--shape NAME=DIMS (DIMS like 1x3x8x8 or 4) sets a whole input shape when NAME is an input
name, otherwise the value of the symbolic dimension NAME (e.g. --shape batch=2). Symbolic or
unknown dims that are not given are 1.
An npz (--inputs or --npz) supplies inputs by key = input name; --npz-key-map input=images
feeds the model input "input" from npz key "images".

Per output (matched by name, else by position) the JSON reports bit_identical
(np.array_equal with NaN == NaN; note -0.0 == 0.0) and max_abs_diff (positions equal under
that rule count 0). Exit 1 if any output differs (or exceeds --atol, when given).
"""
import argparse

import numpy as np

from _common import ort_dtype, run, session

WORDS = np.array(["whittle", "onnx", "", "model", "graph"])


def parse_shapes(items):
    shapes = {}
    for item in items:
        name, _, dims = item.partition("=")
        if not name or not dims:
            raise ValueError(f"--shape expects NAME=DIMS, got {item!r}")
        shapes[name] = [int(d) for d in dims.lower().split("x")]
    return shapes


def concrete_shape(inp, shapes):
    if inp.name in shapes:
        return shapes[inp.name]
    dims = []
    for d in inp.shape:
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif isinstance(d, str) and d in shapes and len(shapes[d]) == 1:
            dims.append(shapes[d][0])
        else:
            dims.append(1)
    return dims


def random_input(rng, dtype, shape, int_high):
    if dtype.kind == "f" or dtype.name == "bfloat16":
        return rng.uniform(-1.0, 1.0, shape).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, int_high, shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind == "U":
        return WORDS[rng.integers(0, len(WORDS), shape)].astype(object)
    raise ValueError(f"cannot generate {dtype}")


def build_feeds(ref, args):
    npz = np.load(args.inputs or args.npz) if (args.inputs or args.npz) else {}
    key_map = dict(item.split("=", 1) for item in args.npz_key_map)
    shapes = parse_shapes(args.shape)
    rng = np.random.default_rng(args.seed)
    feeds = {}
    for inp in ref.get_inputs():
        key = key_map.get(inp.name, inp.name)
        dtype = ort_dtype(inp.type)
        if key in npz:
            feeds[inp.name] = np.asarray(npz[key]).astype(dtype, copy=False)
        else:
            feeds[inp.name] = random_input(rng, dtype, concrete_shape(inp, shapes), args.int_high)
    return feeds


def compare(a, b):
    if a.shape != b.shape:
        return False, None
    if a.dtype.kind in "fc" or a.dtype.name == "bfloat16":
        identical = bool(np.array_equal(a, b, equal_nan=True))
        a64, b64 = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), b.astype(
            np.complex128 if b.dtype.kind == "c" else np.float64)
        same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
        diff = np.where(same, 0.0, np.abs(a64 - b64))
    elif a.dtype.kind in "OUS":
        identical = bool(np.array_equal(a, b))
        diff = np.where(a == b, 0.0, np.inf)
    else:
        identical = bool(np.array_equal(a, b))
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    max_diff = float(np.nanmax(diff)) if diff.size else 0.0
    return identical, (max_diff if np.isfinite(max_diff) else None)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("reference")
    p.add_argument("candidate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", action="append", default=[])
    p.add_argument("--inputs")
    p.add_argument("--npz")
    p.add_argument("--npz-key-map", action="append", default=[])
    p.add_argument("--atol", type=float)
    p.add_argument("--int-high", type=int, default=2)
    p.add_argument("--opt-level", default="all", choices=["disable", "basic", "extended", "all"])
    args = p.parse_args()

    ref, cand = session(args.reference, args.opt_level), session(args.candidate, args.opt_level)
    feeds = build_feeds(ref, args)
    cand_names = [i.name for i in cand.get_inputs()]
    missing = [n for n in cand_names if n not in feeds]
    if missing:
        raise ValueError(f"candidate needs inputs the reference does not have: {missing}")
    ref_names = [o.name for o in ref.get_outputs()]
    cand_out_names = [o.name for o in cand.get_outputs()]
    by_name = set(ref_names) <= set(cand_out_names)
    ref_out = ref.run(None, feeds)
    cand_all = cand.run(None, {n: feeds[n] for n in cand_names})
    cand_out = ([cand_all[cand_out_names.index(n)] for n in ref_names] if by_name else cand_all)
    if len(cand_out) != len(ref_out):
        raise ValueError(f"output count differs: {len(ref_out)} vs {len(cand_out)}")

    outputs, ok = [], True
    for name, a, b in zip(ref_names, ref_out, cand_out):
        a, b = np.asarray(a), np.asarray(b)
        identical, max_diff = compare(a, b)
        within = identical if args.atol is None else (max_diff is not None and max_diff <= args.atol)
        ok &= within
        outputs.append({"name": name, "dtype": str(a.dtype), "shape": list(a.shape),
                        "candidate_dtype": str(b.dtype), "candidate_shape": list(b.shape),
                        "bit_identical": identical, "max_abs_diff": max_diff, "within_tolerance": within})
    result = {
        "reference": args.reference, "candidate": args.candidate, "seed": args.seed,
        "atol": args.atol, "matched_by": "name" if by_name else "position",
        "inputs": {i.name: {"dtype": str(feeds[i.name].dtype), "shape": list(feeds[i.name].shape),
                            "declared_shape": list(i.shape)} for i in ref.get_inputs()},
        "outputs": outputs, "all_identical": all(o["bit_identical"] for o in outputs), "ok": ok,
    }
    if not ok:
        result["error"] = "outputs differ: " + ", ".join(o["name"] for o in outputs if not o["within_tolerance"])
    return result


if __name__ == "__main__":
    run(main)
