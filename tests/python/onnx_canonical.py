"""Tell which model files are exactly what the onnx library itself would write.

    onnx_canonical.py MODEL.onnx [MODEL.onnx ...]

For each file: onnx.load (external data left where it is) then SerializeToString(); the
file is "canonical" when that gives its bytes back. Those are the files whittle must
re-encode byte-identically (the others were written by another serializer: a different
field order, unknown fields, non-packed repeated fields...).
Prints {"canonical": {path: bool}, "count": N}.
"""
import sys
from pathlib import Path

import onnx

from _common import run


def main():
    result = {}
    for arg in sys.argv[1:]:
        data = Path(arg).read_bytes()
        model = onnx.load_from_string(data) if data else None
        result[arg] = model is not None and model.SerializeToString() == data
    return {"canonical": result, "count": len(result)}


if __name__ == "__main__":
    run(main)
