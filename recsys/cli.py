"""`recsys` subcommands. TensorFlow loads inside the commands that train, so `recsys --help`
and a bad flag never load it; the flags' choices come from the TensorFlow-free modules that
own them.

Every command exits 0 on success, 2 with one line `recsys: error: ...` on bad input, and
130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from recsys.artifacts.errors import DataError, RecsysError
from recsys.artifacts.heads import INPUTS as HEAD_INPUTS
from recsys.index.build_index import build_index
from recsys.model.data.dataset import FORMATS
from recsys.model.data.movielens import SAMPLING, convert
from recsys.model.data.simulate import PROFILES, simulate
from recsys.model.evaluation.evaluate import OBJECTIVES, evaluate
from recsys.model.training.config import CVR_LOSSES, PRESETS, make_config

# Before any TensorFlow import: its C++ loader then stays quiet below errors, and an error stays one line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def cmd_simulate(args) -> None:
    summary = simulate(args.profile, Path(args.out), users=args.users, items=args.items,
                       interactions=args.interactions, seed=args.seed, feature_prefix=args.feature_prefix,
                       fmt=args.format)
    print(json.dumps({"out": str(args.out), **summary}))


def cmd_convert(args) -> None:
    summary = convert(args.ratings_dir, args.out, negatives=args.negatives, seed=args.seed,
                      sampling=args.sampling, fmt=args.format)
    print(json.dumps({"out": str(args.out), **summary}))


def cmd_train(args) -> None:
    from recsys.model.training.train import train  # TensorFlow

    config = make_config(args.preset, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, seed=args.seed, cvr_loss=args.cvr_loss,
                         head_inputs=args.head_inputs, retrieval_weight=args.retrieval_weight)
    path, metrics = train(args.data, args.out, config, distributed=args.distributed)
    if path is None:  # a distributed run's non-chief worker: the chief wrote the version
        print(json.dumps({"version": None, "path": None, **metrics}))
    else:
        print(json.dumps({"version": path.name, "path": str(path), **metrics}))


def cmd_build_index(args) -> None:
    path = build_index(args.artifacts, args.version, args.index)
    print(json.dumps({"index": str(path)}))


def cmd_evaluate(args) -> None:
    print(json.dumps(evaluate(args.artifacts, args.data, version=args.version, ks=args.k, objective=args.objective,
                              max_users=args.max_users, baselines=not args.no_baselines), indent=2))


def cmd_report(args) -> None:
    from recsys.model.evaluation.report import report  # TensorFlow

    movielens = Path(args.movielens) if args.movielens else None
    if movielens is not None and not movielens.is_dir():
        raise DataError(f"{movielens}: MovieLens directory not found")
    print(json.dumps({"report": str(report(Path(args.out), movielens, args.work))}))


def cmd_serve(args) -> None:
    from pydantic import ValidationError

    from recsys.artifacts.errors import ConfigError
    from recsys.service.server import serve
    from recsys.service.settings import Settings

    overrides = {k: v for k, v in vars(args).items()
                 if k in Settings.model_fields and v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"setting {'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')}") \
            from None  # the message never echoes the value: it may be the admin token
    serve(settings)  # checks the artifacts before the port opens; ArtifactError -> exit 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recsys", description="Two-tower CTR/CVR retrieval: offline jobs and the service.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("simulate", help="write a simulated data set in the dataset contract")
    s.add_argument("--profile", choices=PROFILES, default="seed",
                   help="seed: the article's data, exactly; realistic: a planted world with known truth "
                        "(also writes truth.parquet, world.npz)")
    s.add_argument("--out", required=True, help="output dataset directory")
    s.add_argument("--users", type=_positive, help="default: seed 100, realistic 20000")
    s.add_argument("--items", type=_positive, help="default: seed 200, realistic 5000")
    s.add_argument("--interactions", type=_positive, help="exposures; default: seed 1000, realistic 500000")
    s.add_argument("--seed", type=int, help="default: seed 42, realistic 0")
    s.add_argument("--feature-prefix", help="prefix every feature name except user_id and item_id")
    s.add_argument("--format", choices=FORMATS, default="auto",
                   help="auto: Parquet above 1M interactions, CSV below")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("convert", help="convert a public data set into the dataset contract")
    conv = s.add_subparsers(dest="source", required=True, metavar="SOURCE")
    s = conv.add_parser("movielens", help="MovieLens ratings.csv + movies.csv: ratings are clicks, "
                                          ">= 4 conversions, sampled unrated items non-clicks; "
                                          "each user's last rating goes to test.parquet")
    s.add_argument("--ratings-dir", required=True, help="directory with ratings.csv and movies.csv")
    s.add_argument("--out", required=True, help="output dataset directory")
    s.add_argument("--negatives", type=int, default=4, help="non-click exposures sampled per rating (default 4)")
    s.add_argument("--sampling", choices=SAMPLING, default="uniform",
                   help="how negatives are drawn from the user's unrated movies (default uniform)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--format", choices=FORMATS, default="auto",
                   help="auto: Parquet above 1M interactions, CSV below")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("train", help="train the two towers and heads; write a new artifact version")
    s.add_argument("--data", required=True, help="dataset directory (users, items, interactions, features.toml)")
    s.add_argument("--out", required=True, help="artifact root; a new version directory is created under it")
    s.add_argument("--preset", choices=list(PRESETS), default="default",
                   help="article: the blog article's model, as it was; default: retrieval loss, "
                        "reordering heads, masked CVR loss, early stopping (the flags below override either)")
    s.add_argument("--epochs", type=_positive)
    s.add_argument("--batch-size", type=_positive)
    s.add_argument("--learning-rate", type=float)
    s.add_argument("--seed", type=int, help="seeds the split, initialisation and shuffling (default 42)")
    s.add_argument("--cvr-loss", choices=CVR_LOSSES,
                   help="masked: CVR loss on clicked rows (the article); esmm: pCTR*pCVR over all exposures")
    s.add_argument("--head-inputs", choices=HEAD_INPUTS,
                   help="dot: heads see u·v only (the article); dot+product: also u⊙v; full: also u and v")
    s.add_argument("--retrieval-weight", type=float, help="weight of the in-batch softmax loss; 0 turns it off")
    s.add_argument("--distributed", action="store_true",
                   help="one worker of a MultiWorkerMirroredStrategy cluster described by TF_CONFIG; run the same "
                        "command on every worker; only worker 0 writes the version")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("build-index", help="embed every item and write a FAISS index into a version")
    s.add_argument("--artifacts", required=True)
    s.add_argument("--version", help="default: newest complete version")
    s.add_argument("--index", choices=["flat", "hnsw", "ivf", "auto"], default="auto",
                   help="auto: exact flat up to 100k items, IVF above")
    s.set_defaults(func=cmd_build_index)

    s = sub.add_parser("evaluate", help="held-out AUCs and recall/NDCG@K, printed as JSON")
    s.add_argument("--artifacts", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--version", help="default: newest complete version")
    s.add_argument("--k", type=_ints, default=(10, 50, 100), help="cut-offs, e.g. 10,50,100")
    s.add_argument("--objective", choices=OBJECTIVES, default="ctcvr",
                   help="score that ranks the catalogue for recall/NDCG (default: ctcvr, as the service)")
    s.add_argument("--max-users", type=_positive, default=2000,
                   help="rank the catalogue for at most this many users (a fixed random sample)")
    s.add_argument("--no-baselines", action="store_true",
                   help="skip the baselines (popularity, random; oracle and bayes on simulated data)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("report", help="train and evaluate on the benchmark data sets; write docs/QUALITY.md")
    s.add_argument("--out", default="docs", help="directory for QUALITY.md and its plots (default: docs)")
    s.add_argument("--movielens", help="a MovieLens directory (ratings.csv, movies.csv), e.g. ml-latest-small")
    s.add_argument("--work", help="directory for the generated data and models (default: a temporary one)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("serve", help="run the HTTP service (settings also from RECSYS_* env vars)")
    s.add_argument("--artifacts", help="artifact root (env RECSYS_ARTIFACTS)")
    s.add_argument("--version", help="version to serve and reload (env RECSYS_VERSION; default: ARTIFACTS/current)")
    s.add_argument("--host", help="bind address (env RECSYS_HOST; default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (env RECSYS_PORT; default 8000)")
    s.add_argument("--max-k", dest="max_k", type=_positive, help="largest k accepted (env RECSYS_MAX_K; default 100)")
    s.add_argument("--candidates", type=_positive, help="index candidates re-scored per request (env RECSYS_CANDIDATES)")
    s.add_argument("--nprobe", type=_positive, help="IVF lists probed per query (env RECSYS_NPROBE; default 32)")
    s.add_argument("--ef-search", dest="ef_search", type=_positive,
                   help="HNSW beam width (env RECSYS_EF_SEARCH; default 64)")
    s.add_argument("--user-tower", dest="user_tower", choices=["numpy", "savedmodel"],
                   help="user embedding by numpy weights or the SavedModel (env RECSYS_USER_TOWER; default numpy)")
    s.add_argument("--log-level", dest="log_level", choices=["critical", "error", "warning", "info", "debug"],
                   help="(env RECSYS_LOG_LEVEL; default info)")
    s.add_argument("--log-format", dest="log_format", choices=["json", "text"],
                   help="json lines with request ids, or plain text (env RECSYS_LOG_FORMAT; default json)")
    s.add_argument("--batch-size", dest="batch_size", type=_positive,
                   help="largest micro-batch of concurrent requests (env RECSYS_BATCH_SIZE; default 32)")
    s.add_argument("--batch-delay-ms", dest="batch_delay_ms", type=float,
                   help="longest wait for a batch to fill, only while other requests are on their way "
                        "(env RECSYS_BATCH_DELAY_MS; default 1)")
    s.add_argument("--workers", type=_positive,
                   help="server processes sharing the port, each with its own model copy (env RECSYS_WORKERS; "
                        "default 1)")
    # Backpressure and limits; an admin token is environment-only (RECSYS_ADMIN_TOKEN), never a flag.
    s.add_argument("--max-in-flight", dest="max_in_flight", type=_positive,
                   help="recommend requests admitted at once, per worker (env RECSYS_MAX_IN_FLIGHT; default 64)")
    s.add_argument("--max-queue", dest="max_queue", type=int,
                   help="requests waiting for a slot before 503 (env RECSYS_MAX_QUEUE; default 32)")
    s.add_argument("--queue-timeout", dest="queue_timeout", type=float,
                   help="seconds a request may wait for a slot (env RECSYS_QUEUE_TIMEOUT; default 1)")
    s.add_argument("--max-body-bytes", dest="max_body_bytes", type=_positive,
                   help="largest request body (env RECSYS_MAX_BODY_BYTES; default 65536)")
    s.add_argument("--max-json-depth", dest="max_json_depth", type=_positive,
                   help="deepest JSON nesting accepted (env RECSYS_MAX_JSON_DEPTH; default 8)")
    s.add_argument("--unknown-user-fallback", dest="unknown_user_fallback", choices=["none", "popular"],
                   help="unknown user without user_features: 404 or popular items (env RECSYS_UNKNOWN_USER_FALLBACK)")
    s.add_argument("--drain-seconds", dest="drain_seconds", type=float,
                   help="after SIGTERM, seconds /readyz is 503 before the listener closes (env RECSYS_DRAIN_SECONDS; "
                        "default 2)")
    s.add_argument("--shutdown-timeout", dest="shutdown_timeout", type=float,
                   help="seconds in-flight requests get to finish on stop (env RECSYS_SHUTDOWN_TIMEOUT; default 10)")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except RecsysError as e:
        print(f"recsys: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recsys: interrupted", file=sys.stderr)
        return 130
    return 0
