"""Writes the inputs silero VAD needs into an .npz (seeded audio chunk, zero state, a real
sample rate): `silero_inputs.py OUT.npz [SAMPLE_RATE]`. The seeded defaults of
ort_run_compare.py cannot be used because `sr` must be 8000 or 16000 and the chunk at least
a few hundred samples long (the model pads it with reflect padding).
Used by tests/tests/optimize.rs."""
import sys

import numpy as np

out = sys.argv[1]
sr = int(sys.argv[2]) if len(sys.argv) > 2 else 16000
rng = np.random.default_rng(0)
chunk = 512 if sr == 16000 else 256
np.savez(out, input=rng.uniform(-1, 1, (1, chunk)).astype(np.float32),
         state=np.zeros((2, 1, 128), np.float32), sr=np.array(sr, np.int64))
print('{"ok": true}')
