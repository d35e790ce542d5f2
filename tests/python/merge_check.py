"""Check a `whittle merge` result in onnxruntime against its members run separately.

    merge_check.py MERGED --combine HOW --member M0.onnx --member M1.onnx ...
                   [--prefix P1,P2,...] [--axis N] [--map I:NAME=SHARED ...]
                   [--seed N] [--batch B] [--dim SYMBOL=N ...] [--fill NAME=VALUE ...]
                   [--atol X] [--opt-level L]

The merged model's inputs are generated from a seeded numpy Generator (floats uniform
[-1, 1], integers and bools 0/1); a symbolic or unknown dim is --batch (default 16), or N
for --dim SYMBOL=N; --fill NAME=VALUE fills an input with one value instead (a sample
rate, a zero state). Each member runs on the same arrays: member input NAME is fed from
merged input NAME, or SHARED for --map I:NAME=SHARED (I the member index). The expected
merged outputs are computed here with numpy (float64) from the members' outputs, matched
like whittle matches them (names every member has, then the rest by position):

- mean / weighted:W1,... (weights normalised to sum 1) / max / softmax-mean (--axis) /
  concat (--axis) / stack (new axis 0): output NAME (the first member's output name);
- vote: NAME/winner and NAME/votes from a direct per-sample computation (argmax per member,
  counts, ties broken by the highest mean score, then the lowest index); `ties` counts the
  samples where two or more classes had the most votes;
- all: PREFIX+NAME of every member output; diff: both of those plus NAME/absdiff.

JSON: per output `max_abs_diff` (NaN == NaN), or `mismatched` samples for integer, bool
and string outputs, or `equal` for sequences and maps; `samples`, `ties`, `members` (their
output names), `unchecked_outputs`. Exit 1 if any float output is off by more than --atol
(default 1e-6), anything else differs, or the merged model has outputs not checked.
"""
import argparse

import numpy as np

from _common import ort_dtype, run, session


def feeds_for(sess, rng, batch, fills, dims):
    feeds = {}
    for inp in sess.get_inputs():
        dtype = ort_dtype(inp.type)
        shape = [d if isinstance(d, int) and d >= 0 else dims.get(d, batch) for d in inp.shape]
        if inp.name in fills:
            feeds[inp.name] = np.full(shape, float(fills[inp.name])).astype(dtype)
        elif dtype.kind == "f":
            feeds[inp.name] = rng.uniform(-1.0, 1.0, shape).astype(dtype)
        elif dtype.kind in "iu":
            feeds[inp.name] = rng.integers(0, 2, shape).astype(dtype)
        else:
            feeds[inp.name] = rng.integers(0, 2, shape).astype(bool)
    return feeds


def match(names):
    """Groups of output indices (one per member), by name then position."""
    common = [n for n in names[0] if all(m.count(n) == 1 for m in names)]
    rest = [[k for k, n in enumerate(m) if n not in common] for m in names]
    if any(len(r) != len(rest[0]) for r in rest):
        raise ValueError(f"outputs cannot be matched: {names}")
    groups, pos = [], 0
    for k, n in enumerate(names[0]):
        if n in common:
            groups.append((n, [m.index(n) for m in names]))
        else:
            groups.append((n, [r[pos] for r in rest]))
            pos += 1
    return groups


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def vote(ys, axis):
    ys = [np.moveaxis(y, axis, -1) for y in ys]
    classes = ys[0].shape[-1]
    counts = sum(np.eye(classes, dtype=np.int64)[y.argmax(-1)] for y in ys)
    mean = np.mean(np.stack([y.astype(np.float64) for y in ys]), axis=0)
    top = counts == counts.max(-1, keepdims=True)
    winner = np.where(top, mean, -np.inf).argmax(-1)
    ties = int((top.sum(-1) > 1).sum())
    return winner, np.moveaxis(counts, -1, axis), ties


def expected(how, axis, groups, outs, prefixes):
    exp, ties = {}, 0
    for name, idx in groups:
        ys = [outs[i][k][1] for i, k in enumerate(idx)]
        f = [y.astype(np.float64) for y in ys]
        if how == "mean":
            exp[name] = np.mean(f, axis=0)
        elif how.startswith("weighted:"):
            w = np.array([float(x) for x in how.split(":", 1)[1].split(",")])
            exp[name] = sum(wk / w.sum() * y for wk, y in zip(w, f))
        elif how == "max":
            exp[name] = np.max(f, axis=0)
        elif how == "softmax-mean":
            exp[name] = np.mean([softmax(y, axis) for y in f], axis=0)
        elif how == "concat":
            exp[name] = np.concatenate(ys, axis=axis)
        elif how == "stack":
            exp[name] = np.stack(ys, axis=0)
        elif how == "vote":
            winner, counts, t = vote(ys, axis)
            exp[f"{name}/winner"], exp[f"{name}/votes"] = winner, counts
            ties += t
        elif how == "diff":
            exp[prefixes[0] + outs[0][idx[0]][0]] = ys[0]
            exp[prefixes[1] + outs[1][idx[1]][0]] = ys[1]
            exp[f"{name}/absdiff"] = np.abs(f[0] - f[1])
        else:
            raise ValueError(f"unknown combiner {how}")
    return exp, ties


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("merged")
    ap.add_argument("--combine", required=True)
    ap.add_argument("--member", action="append", required=True)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--axis", type=int, default=-1)
    ap.add_argument("--map", action="append", default=[])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--fill", action="append", default=[])
    ap.add_argument("--dim", action="append", default=[])
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument("--opt-level", default="all")
    args = ap.parse_args()
    n = len(args.member)
    prefixes = args.prefix.split(",") if args.prefix else [f"m{i}" for i in range(n)]
    prefixes = [p if p.endswith("/") else p + "/" for p in prefixes]
    maps = {}
    for m in args.map:
        left, shared = m.rsplit("=", 1)
        i, name = left.split(":", 1)
        maps[(int(i), name)] = shared

    merged = session(args.merged, args.opt_level)
    fills = dict(f.split("=", 1) for f in args.fill)
    dims = {k: int(v) for k, v in (d.split("=", 1) for d in args.dim)}
    feeds = feeds_for(merged, np.random.default_rng(args.seed), args.batch, fills, dims)
    got = dict(zip([o.name for o in merged.get_outputs()], merged.run(None, feeds)))
    outs = []
    for i, path in enumerate(args.member):
        s = session(path, args.opt_level)
        mf = {x.name: feeds[maps.get((i, x.name), x.name)] for x in s.get_inputs()}
        outs.append(list(zip([o.name for o in s.get_outputs()], s.run(None, mf))))
    if args.combine == "all":
        exp = {prefixes[i] + name: y for i, o in enumerate(outs) for name, y in o}
        ties = 0
    else:
        groups = match([[name for name, _ in o] for o in outs])
        exp, ties = expected(args.combine, args.axis, groups, outs, prefixes)
    report, ok = {}, True
    for name, want in exp.items():
        if name not in got:
            raise ValueError(f"the merged model has no output {name!r} (it has {sorted(got)})")
        have = got[name]
        r = {}
        if not isinstance(have, np.ndarray):  # sequences, maps (e.g. ZipMap)
            r["equal"] = bool(have == want)
            ok &= r["equal"]
            report[name] = r
            continue
        if have.shape != want.shape:
            raise ValueError(f"{name}: shape {have.shape}, expected {want.shape}")
        r["dtype"] = str(have.dtype)
        if have.dtype.kind in "iubUO":
            bad = have != want
            r["mismatched"] = int(bad.reshape(bad.shape[0], -1).any(axis=1).sum()) if bad.ndim else int(bad)
            ok &= r["mismatched"] == 0
        else:
            h, w = have.astype(np.float64), np.asarray(want, np.float64)
            both_nan = np.isnan(h) & np.isnan(w)
            d = np.where(both_nan, 0.0, np.abs(h - w))
            diff = float(np.max(d)) if d.size else 0.0
            r["max_abs_diff"] = diff
            ok &= diff <= args.atol  # NaN where only one side is NaN fails this
        report[name] = r
    extra = sorted(set(got) - set(exp))
    result = {"outputs": report, "samples": args.batch, "ties": ties, "unchecked_outputs": extra,
              "members": [[name for name, _ in o] for o in outs], "ok": ok and not extra}
    if not result["ok"]:
        result["error"] = f"merged outputs differ from the combination of the members: {report}, unchecked {extra}"
    return result


if __name__ == "__main__":
    run(main)
