"""Writes a calibration set for silero VAD into an .npz: `silero_calib.py OUT.npz [N]`.
One sample per run, so every array has one axis more than the model's input (the batch
axis of `state` [2, B, 128] is not its first axis): input [N, 1, 512] (seeded audio-like
chunks), state [N, 2, 1, 128] zeros, sr [N] = 16000. Used by tests/tests/quantize_subgraphs.rs."""
import sys

import numpy as np

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
rng = np.random.default_rng(0)
t = np.arange(512)
audio = np.stack([0.5 * np.sin(t * (0.05 + 0.01 * k)) + 0.1 * rng.standard_normal(512) for k in range(n)])
np.savez(out, input=audio.astype(np.float32)[:, None, :],
         state=np.zeros((n, 2, 1, 128), np.float32), sr=np.full((n,), 16000, np.int64))
print('{"ok": true}')
