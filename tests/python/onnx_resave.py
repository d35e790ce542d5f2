"""Load a model with the onnx library and save it again (the reference for byte-identity).

    onnx_resave.py IN.onnx OUT.onnx [--keep-external]

Default: onnx.load(IN) (external data pulled in) then onnx.save(OUT), so OUT is one
self-contained file. --keep-external: load without external data, save the proto as is and
copy the referenced external files next to OUT, keeping the original layout. Reports the
sizes and sha256 of IN and OUT and whether they are byte-identical.
"""
import argparse
import hashlib
import shutil
from pathlib import Path

import onnx
from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

from _common import run


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--keep-external", action="store_true")
    args = p.parse_args()
    src, dst = Path(args.input), Path(args.output)
    copied = []
    if args.keep_external:
        model = onnx.load(str(src), load_external_data=False)
        onnx.save(model, str(dst))
        for loc in sorted({ExternalDataInfo(t).location for t in _get_all_tensors(model)
                           if uses_external_data(t)}):
            target = dst.parent / loc
            if (src.parent / loc).resolve() != target.resolve():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src.parent / loc, target)
            copied.append(loc)
    else:
        onnx.save(onnx.load(str(src)), str(dst))
    in_sha, out_sha = digest(src), digest(dst)
    return {"input": str(src), "output": str(dst), "input_bytes": src.stat().st_size,
            "output_bytes": dst.stat().st_size, "input_sha256": in_sha, "output_sha256": out_sha,
            "identical": in_sha == out_sha, "external_files": copied}


if __name__ == "__main__":
    run(main)
