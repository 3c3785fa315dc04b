"""Writes pillow13_bilinear.json: hashes of Pillow 13's own bilinear resizes of seeded random images.

Run under Pillow 13: python tests/data/pillow13_bilinear.py tests/data/pillow13_bilinear.json
"""
import hashlib, json, sys
import numpy as np
import PIL
from PIL import Image
assert PIL.__version__.startswith("13."), PIL.__version__
rng = np.random.default_rng(13)
cases = []
for i in range(60):
    if i % 3 == 2:  # near the pass-order boundary, 2*(sw-dw) ~ sh-dh
        sw, sh = (int(v) for v in rng.integers(24, 96, 2)); dh = int(rng.integers(2, sh))
        dw = max(1, sw - (sh - dh) // 2 + int(rng.integers(-1, 2)))
    else:
        sw, sh, dw, dh = (int(v) for v in rng.integers(2, 96, 4))
    mode = ["RGB", "L"][i % 2]
    pixels = np.random.default_rng(i).integers(0, 256, (sh, sw, 3) if mode == "RGB" else (sh, sw), dtype=np.uint8)
    out = np.asarray(Image.fromarray(pixels).resize((dw, dh), Image.BILINEAR))
    cases.append({"seed": i, "mode": mode, "size": [sw, sh], "resized": [dw, dh],
                  "sha256": hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()})
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"pillow": PIL.__version__, "cases": None}).replace("null", "[\n" + ",\n".join(json.dumps(c) for c in cases) + "\n]") + "\n")
