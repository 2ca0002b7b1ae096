"""How close to the oracle can the default model get on a realistic data set, given perfect inputs?

    python -m bench.learnability --data DIR [--out WORKDIR]

DIR is a `recsys simulate --profile realistic` output (it holds world.npz). The script
trains the default preset twice on the same interactions and held-out split: `observed`,
on the data set as it is, and `revealed`, with the world's hidden parameters as features
instead of ids (model/evaluation/learnability.py). It prints, as JSON, both runs' held-out AUCs next
to `equations` (the truth equations applied to the revealed inputs) and the oracle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.learnability", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="a realistic simulator output (holds world.npz)")
    ap.add_argument("--out", type=Path, help="work directory (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    from recsys.model.evaluation.learnability import has_priors, learnability, rounded

    if not (args.data / "world.npz").is_file():
        print(f"learnability: {args.data}/world.npz not found: give a `recsys simulate --profile realistic` output",
              file=sys.stderr)
        return 2
    if not has_priors(args.data):
        print(f"learnability: {args.data}/world.npz predates the stored feature priors: simulate it again",
              file=sys.stderr)
        return 2

    from recsys.model.training.config import make_config
    from recsys.model.training.train import train

    work = args.out or Path(tempfile.mkdtemp(prefix="recsys-learnability-"))
    try:
        config = make_config("default")
        _, metrics = train(args.data, work / "artifacts-observed", config)
        result = {"observed": rounded(metrics)}
        result |= learnability(args.data, work, config)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
