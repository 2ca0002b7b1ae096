"""`recsys` subcommands. TensorFlow loads inside the commands that train, so `recsys --help`
and a bad flag never load it; the flags' choices come from the TensorFlow-free modules that
own them, and the options built from a module's constants (serve's settings, the index
kinds) are added only when that command runs.

Every command exits 0 on success, 2 with one line `recsys: error: ...` on bad input, and
130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import types
import typing
from pathlib import Path

from recsys import tensorflow_log
from recsys.artifacts.errors import DataError, RecsysError

# Before any TensorFlow import: its C++ loader then stays quiet below errors, and an error stays
# one line. The lines it writes while loading ignore that level (the oneDNN notice on CPUs where
# oneDNN's custom ops are on, which train about twice as fast on an AVX-512 Xeon): filtered.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tensorflow_log.install()


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


def _finite_float(text: str) -> float:
    """A finite number: a NaN or infinite hyperparameter trains a NaN model that would be promoted."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    """A number > 0 (learning rates): the rule is checked here, before TensorFlow loads."""
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value



def subcommand(sub, name: str, help: str, **kw) -> argparse.ArgumentParser:
    """A subcommand whose own --help opens with what it does (the command list's line, unless
    a longer description is given)."""
    kw.setdefault("description", help)
    return sub.add_parser(name, help=help, **kw)

def _non_negative_float(text: str) -> float:
    """A number >= 0 (loss weights, where 0 turns a loss off)."""
    value = _finite_float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _fraction(text: str) -> float:
    """A number in [0, 1) (the share of rows a training option touches)."""
    value = _finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text!r}")
    return value


def _history_length(text: str) -> int:
    """0..MAX_HISTORY_LENGTH recent items (kept in step with TrainConfig's check)."""
    from recsys.model.training.config import MAX_HISTORY_LENGTH

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value <= MAX_HISTORY_LENGTH:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_HISTORY_LENGTH}, got {text!r}")
    return value


SEED_MAX = 2**32 - 1  # numpy and TensorFlow seeds are unsigned 32-bit


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..{SEED_MAX}, got {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """Usage errors as the one line every other error is: `recsys: error: ...`, exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"recsys: error: {message} (see `{self.prog} --help`)\n")


def cmd_simulate(args) -> None:
    from recsys.model.data.simulate import simulate

    summary = simulate(args.profile, Path(args.out), users=args.users, items=args.items,
                       interactions=args.interactions, seed=args.seed, feature_prefix=args.feature_prefix,
                       fmt=args.format, funnel=args.funnel)
    print(json.dumps({"out": str(args.out), **summary}))


def cmd_convert(args) -> None:
    from recsys.model.data.movielens import convert

    summary = convert(args.ratings_dir, args.out, negatives=args.negatives, seed=args.seed,
                      sampling=args.sampling, fmt=args.format)
    print(json.dumps({"out": str(args.out), **summary}))


def cmd_train(args) -> None:
    out = Path(args.out)
    if out.exists() and not out.is_dir():  # found before minutes of training, not after
        raise DataError(f"{out}: exists and is not a directory (--out is an artifact root)")
    from recsys.model.training.config import make_config
    from recsys.model.training.train import train  # TensorFlow

    config = make_config(args.preset, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, seed=args.seed, cvr_loss=args.cvr_loss,
                         head_inputs=args.head_inputs, retrieval_weight=args.retrieval_weight,
                         id_dropout=args.id_dropout, history_length=args.history_length,
                         history_table=args.history_table, split=args.split)
    path, metrics = train(args.data, args.out, config, distributed=args.distributed)
    if path is None:  # a distributed run's non-chief worker: the chief wrote the version
        print(json.dumps({"version": None, "path": None, **metrics}))
    else:
        print(json.dumps({"version": path.name, "path": str(path), **metrics}))


def cmd_build_index(args) -> None:
    from recsys.index.build_index import build_index

    path = build_index(args.artifacts, args.version, args.index)
    print(json.dumps({"index": str(path)}))


def cmd_evaluate(args) -> None:
    from recsys.model.evaluation.evaluate import as_table, evaluate, rounded

    result = rounded(evaluate(args.artifacts, args.data, version=args.version, ks=args.k, objective=args.objective,
                              max_users=args.max_users, baselines=not args.no_baselines))
    # JSON for pipes and files (the contract), a table for a person at a terminal
    print(json.dumps(result, indent=2) if args.json or not sys.stdout.isatty() else as_table(result))


def cmd_recommend(args) -> None:
    from recsys.artifacts.version import Version
    from recsys.service import batch
    from recsys.service.domain import Objective
    from recsys.service.recommender import Recommender
    from recsys.service.settings import Settings

    out = Path(args.out)
    batch.check_output(out)  # before minutes of work
    settings = Settings(artifacts=args.artifacts, version=args.version)
    version = Version.open(settings.artifacts, settings.version, need_index=True)  # as `recsys serve` does
    rec = Recommender(version, settings)
    users = rec.users.ids if args.all_users else batch.read_users(Path(args.users))
    result = batch.recommend_users(rec, users, args.k, Objective(args.objective), args.exclude_seen)
    if result.unknown:
        shown = ", ".join(repr(u) for u in result.unknown[:5]) + (", ..." if len(result.unknown) > 5 else "")
        print(f"recommend: {len(result.unknown):,} unknown user(s) skipped: {shown}", file=sys.stderr)
    batch.write(result.table, out)
    print(json.dumps({"out": str(out), "version": rec.version, "users": result.users,
                      "unknown_users": len(result.unknown), "rows": len(result.table)}))


def cmd_report(args) -> None:
    from recsys.model.evaluation.report import report  # TensorFlow

    movielens = Path(args.movielens) if args.movielens else None
    if movielens is not None and not movielens.is_dir():
        raise DataError(f"{movielens}: MovieLens directory not found")
    print(json.dumps({"report": str(report(Path(args.out), movielens, args.work))}))


def cmd_prune(args) -> None:
    from recsys.artifacts.version import prune

    print(json.dumps(prune(args.artifacts, args.keep)))


def cmd_catalogue_apply(args) -> None:
    from recsys.artifacts.catalogue import Catalogue, read_changes, validate
    from recsys.artifacts.version import Version

    version = Version.open(args.artifacts, args.version, need_index=True)
    features = version.spec.tower("item")
    rows = read_changes(args.file, features)
    base = set(version.table("item").ids)
    store = Catalogue(Path(args.catalogue_db) if args.catalogue_db else Catalogue.at_root(args.artifacts).path)
    known = store.statuses(str(r[2]) for r in rows if isinstance(r[2], (int, str)))
    changes = validate(rows, features, lambda i: known.get(i, "available" if i in base else None))
    seq = store.apply(changes) if changes else store.last_seq()
    print(json.dumps({"applied": len(changes), "last_change": seq, "store": str(store.path)}))


def cmd_events_export(args) -> None:
    from recsys.artifacts.events import DATABASE, EventLog

    root = Path(args.artifacts)
    path = Path(args.events_db) if args.events_db else root / DATABASE
    if not args.events_db and not root.is_dir():
        raise DataError(f"{root}: artifact root not found")
    if not path.is_file():  # opening would create an empty log: say there is none instead
        raise DataError(f"{path}: no event log (POST /events writes it; RECSYS_EVENTS_DB of the service)")
    log = EventLog(path)
    print(json.dumps({"exported": log.export(args.out), "out": str(args.out), "log": str(path)}))


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
    if settings.user_tower == "savedmodel":
        from recsys.artifacts.towers import tensorflow_available

        if not tensorflow_available():
            raise ConfigError("--user-tower savedmodel needs TensorFlow, which this installation does not have "
                              "(serving image); use numpy")
    check_bind(settings.host, settings.port)
    serve(settings)  # checks the artifacts before the port opens; ArtifactError -> exit 2


def check_bind(host: str, port: int) -> None:
    """ConfigError unless `host:port` can be bound now, found before the model loads.

    Binds as uvicorn does (SO_REUSEADDR) and lets go; a port taken in between still fails later."""
    import socket

    from recsys.artifacts.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(f"--host {host!r}: cannot be resolved ({getattr(e, 'strerror', None) or e})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror})") from None


def add_settings_flags(p: argparse.ArgumentParser) -> None:
    """One flag per service setting (`max_k` -> `--max-k`), typed and described by its field;
    environment-only settings (the admin token) get none."""
    from recsys.service.settings import ENV_ONLY, Settings, env_name, shown_default

    for name, field in Settings.model_fields.items():
        if name in ENV_ONLY:
            continue
        kind = field.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # `str | None`: the flag gives a str
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        kw = {"choices": typing.get_args(kind)} if typing.get_origin(kind) is typing.Literal \
            else {"type": kind if kind in (int, float) else str}
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, **kw,
                       help=f"{field.description} (env {env_name(name)}; default {shown_default(name)})")


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("recsys")
    except PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown (not installed)"


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `command`, only that subcommand gets its module-derived options."""
    p = Parser(prog="recsys", description="Two-tower CTR/CVR retrieval: offline jobs and the service.")
    p.add_argument("--version", action="version", version=f"recsys {_package_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = subcommand(sub, "simulate", help="write a simulated data set in the dataset contract")
    if command in (None, "simulate"):  # the choices come from modules this command loads anyway
        from recsys.model.data.dataset import FORMATS
        from recsys.model.data.simulate import PROFILES
        from recsys.model.data.world import FUNNELS

        s.add_argument("--profile", choices=PROFILES, default="seed",
                       help="seed: the article's data, exactly; realistic: a planted world with known truth "
                            "(also writes truth.parquet, world.npz); default seed")
        s.add_argument("--out", required=True, help="output dataset directory")
        s.add_argument("--users", type=_positive, help="default: seed 100, realistic 20000")
        s.add_argument("--items", type=_positive, help="default: seed 200, realistic 5000")
        s.add_argument("--interactions", type=_positive, help="exposures; default: seed 1000, realistic 500000")
        s.add_argument("--seed", type=_seed, help="default: seed 42, realistic 0")
        s.add_argument("--feature-prefix", help="prefix every feature name except user_id and item_id (default none)")
        s.add_argument("--format", choices=FORMATS, default="auto",
                       help="auto: Parquet above 1M interactions, CSV below (default auto)")
        s.add_argument("--funnel", choices=tuple(FUNNELS), default="realistic",
                       help="realistic profile's click and conversion rates: realistic, about 8 %% CTR and "
                            "22 %% CVR after a click; sparse, about 4 %% and 2 %% (rare conversions, "
                            "Ali-CCP's shape); default realistic")
    s.set_defaults(func=cmd_simulate)

    s = subcommand(sub, "convert", help="convert a public data set into the dataset contract")
    conv = s.add_subparsers(dest="source", required=True, metavar="SOURCE")
    s = subcommand(conv, "movielens", help="MovieLens ratings.csv + movies.csv: ratings are clicks, "
                                          ">= 4 conversions, sampled unrated items non-clicks; "
                                          "each user's last rating goes to test.parquet")
    if command in (None, "convert"):  # the choices come from modules this command loads anyway
        from recsys.model.data.dataset import FORMATS
        from recsys.model.data.movielens import SAMPLING

        s.add_argument("--ratings-dir", required=True, help="directory with ratings.csv and movies.csv")
        s.add_argument("--out", required=True, help="output dataset directory")
        s.add_argument("--negatives", type=int, default=4, help="non-click exposures sampled per rating (default 4)")
        s.add_argument("--sampling", choices=SAMPLING, default="uniform",
                       help="how negatives are drawn from the user's unrated movies (default uniform)")
        s.add_argument("--seed", type=_seed, default=0, help="seeds the negative sampling (default 0)")
        s.add_argument("--format", choices=FORMATS, default="auto",
                       help="auto: Parquet above 1M interactions, CSV below (default auto)")
    s.set_defaults(func=cmd_convert)

    s = subcommand(sub, "train", help="train the two towers and heads; write a new artifact version")
    if command in (None, "train"):  # the choices come from modules this command loads anyway
        from recsys.artifacts.heads import INPUTS as HEAD_INPUTS
        from recsys.model.training.config import CVR_LOSSES, HISTORY_TABLES, PRESETS, SPLITS, TrainConfig

        s.add_argument("--data", required=True, help="dataset directory (users, items, interactions, features.toml)")
        s.add_argument("--out", required=True, help="artifact root; a new version directory is created under it")
        s.add_argument("--preset", choices=list(PRESETS), default="default",
                       help="article: the blog article's model, as it was; default: retrieval loss, "
                            "reordering heads, masked CVR loss, early stopping (the flags below override either)")
        def preset_default(field: str) -> str:
            """`preset default: default X, article Y`, read from the presets themselves."""
            from dataclasses import fields

            base = {f.name: f.default for f in fields(TrainConfig)}
            shown = {name: {**base, **values}[field] for name, values in PRESETS.items()}
            return "preset default: " + ", ".join(f"{name} {value:g}" if isinstance(value, float)
                                                  else f"{name} {value}" for name, value in shown.items())

        s.add_argument("--epochs", type=_positive,
                       help=f"most epochs (the default preset stops early); {preset_default('epochs')}")
        s.add_argument("--batch-size", type=_positive, help=f"exposures per step; {preset_default('batch_size')}")
        s.add_argument("--learning-rate", type=_positive_float,
                       help=f"Adam's learning rate (dense weights; also the embedding tables under adam); "
                            f"{preset_default('learning_rate')}")
        s.add_argument("--seed", type=_seed, help="seeds the split, initialisation and shuffling (default 42)")
        s.add_argument("--split", choices=SPLITS,
                       help="which interactions are held out for evaluation: random, a seeded share of all rows; "
                            "time, each user's latest share by timestamp (needs a timestamp column); "
                            f"{preset_default('split')}")
        s.add_argument("--cvr-loss", choices=CVR_LOSSES,
                       help="masked: CVR loss on clicked rows (the article); esmm: pCTR*pCVR over all exposures; "
                            f"{preset_default('cvr_loss')}")
        s.add_argument("--head-inputs", choices=HEAD_INPUTS,
                       help="dot: heads see u·v only (the article); dot+product: also u⊙v; full: also u and v; "
                            f"{preset_default('head_inputs')}")
        s.add_argument("--retrieval-weight", type=_non_negative_float,
                       help=f"weight of the in-batch softmax loss; 0 turns it off; {preset_default('retrieval_weight')}")
        s.add_argument("--id-dropout", type=_fraction,
                       help="share of training rows whose user id and (independently) item id are replaced by the "
                            "out-of-vocabulary id, which new users and new catalogue items get; 0 leaves that row "
                            f"untrained; {preset_default('id_dropout')}")
        s.add_argument("--history-length", type=_history_length,
                       help="the user's most recent clicks the user tower pools (strictly before each training "
                            "row's time; without timestamps, the user's other training clicks); 0: no history; "
                            f"{preset_default('history_length')}")
        s.add_argument("--history-table", choices=HISTORY_TABLES,
                       help="own: the history pools an item table of its own; shared: the item tower's item_id "
                            f"table; {preset_default('history_table')}")
        s.add_argument("--distributed", action="store_true",
                       help="one worker of a MultiWorkerMirroredStrategy cluster described by TF_CONFIG; run the same "
                            "command on every worker; only worker 0 writes the version")
    s.set_defaults(func=cmd_train)

    s = subcommand(sub, "build-index", help="embed every item and write a FAISS index into a version")
    s.add_argument("--artifacts", required=True, help="artifact root")
    s.add_argument("--version", help="default: newest complete version")
    if command in (None, "build-index"):
        from recsys.index import formats  # FAISS: imported only by the commands that use it

        s.add_argument("--index", choices=formats.KINDS, default="auto",
                       help="auto: exact flat up to 100k items, IVF above (default auto)")
    s.set_defaults(func=cmd_build_index)

    s = subcommand(sub, "evaluate", help="held-out AUCs and recall/NDCG@K against baselines: a table on a "
                                        "terminal, JSON otherwise (--json)")
    if command in (None, "evaluate"):  # the choices come from modules this command loads anyway
        from recsys.model.evaluation.evaluate import OBJECTIVES

        s.add_argument("--artifacts", required=True, help="artifact root")
        s.add_argument("--data", required=True, help="dataset directory (the training data for its held-out split)")
        s.add_argument("--version", help="default: newest complete version")
        s.add_argument("--k", type=_ints, default=(10, 50, 100), help="cut-offs (default 10,50,100)")
        s.add_argument("--objective", choices=OBJECTIVES, default="ctcvr",
                       help="score that ranks the catalogue for recall/NDCG (default: ctcvr, as the service); "
                            "the ranking by ctr is reported beside it as recall@K_by_ctr / ndcg@K_by_ctr")
        s.add_argument("--max-users", type=_positive, default=2000,
                       help="rank the catalogue for at most this many users, a fixed random sample (default 2000)")
        s.add_argument("--no-baselines", action="store_true",
                       help="skip the baselines (popularity, random; oracle and bayes on simulated data)")
        s.add_argument("--json", action="store_true",
                       help="print JSON even on a terminal (it always is when stdout is a pipe or file)")
    s.set_defaults(func=cmd_evaluate)

    s = subcommand(sub, "report", help="train and evaluate on the benchmark data sets; write docs/QUALITY.md")
    s.add_argument("--out", default="docs", help="directory for QUALITY.md and its plots (default: docs)")
    s.add_argument("--movielens", help="a MovieLens directory (ratings.csv, movies.csv), e.g. ml-latest-small")
    s.add_argument("--work", help="directory for the generated data and models (default: a temporary one)")
    s.set_defaults(func=cmd_report)

    s = subcommand(sub, "recommend", help="top-k lists for many users into one Parquet or CSV file "
                                         "(the service's code path)",
                       description="Writes columns user_id, rank (from 1), item_id, score, p_click, p_conversion, "
                                   "similarity; the same answers POST /recommend gives, from the version the service "
                                   "would load. Users the model does not know are skipped and counted on stderr.")
    s.add_argument("--artifacts", required=True, help="artifact root")
    s.add_argument("--version", help="default: the one ARTIFACTS/current names, else the newest with an index")
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", help="CSV or Parquet file with a user_id column")
    who.add_argument("--all-users", action="store_true", help="every user in the model's feature store")
    s.add_argument("--k", type=_positive, required=True, help="items per user")
    if command in (None, "recommend"):  # the request domain owns the objectives
        from recsys.service.domain import Objective

        s.add_argument("--objective", choices=[o.value for o in Objective], default="ctcvr",
                       help="what ranks the items (default: %(default)s, as the service)")
    s.add_argument("--exclude-seen", action="store_true", help="drop items each user interacted with in training")
    s.add_argument("--out", required=True, help="output file, .parquet or .csv")
    s.set_defaults(func=cmd_recommend)

    s = subcommand(sub, "prune", help="remove old versions; never the one `current` names, nor one being served")
    s.add_argument("--artifacts", required=True)
    s.add_argument("--keep", required=True, type=int, help="newest complete versions to keep (at least 1)")
    s.set_defaults(func=cmd_prune)

    s = subcommand(sub, "catalogue", help="change the live catalogue (served without retraining)")
    cat = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = subcommand(cat, "apply", help="apply a file of item changes, all or nothing "
                                     "(columns item_id, op = upsert|unavailable|available|delete, item attributes)")
    s.add_argument("--artifacts", required=True)
    s.add_argument("--file", required=True, help="changes as .csv or .parquet")
    s.add_argument("--version", help="version whose item features upserts must carry (default: the one served)")
    s.add_argument("--catalogue-db", help="the store (default ARTIFACTS/catalogue.db; RECSYS_CATALOGUE_DB of the service)")
    s.set_defaults(func=cmd_catalogue_apply)

    s = subcommand(sub, "events", help="the service's event log (POST /events)")
    ev = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = subcommand(ev, "export", help="write the event log as a data directory's events file, which "
                                      "`recsys train` adds to the interactions")
    s.add_argument("--artifacts", required=True)
    s.add_argument("--out", required=True, help="DATA/events.csv or DATA/events.parquet (replaced)")
    s.add_argument("--events-db", help="the log (default ARTIFACTS/events.db; RECSYS_EVENTS_DB of the service)")
    s.set_defaults(func=cmd_events_export)

    s = subcommand(sub, "serve", help="run the HTTP service (settings also from RECSYS_* env vars)")
    if command in (None, "serve"):
        add_settings_flags(s)
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv[0] if argv else "").parse_args(argv)

    try:
        args.func(args)
    except RecsysError as e:
        print(f"recsys: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the environment, not the input: a full disk, a read-only root, a busy port
        where = f"{e.filename}: " if e.filename else ""
        print(f"recsys: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recsys: interrupted", file=sys.stderr)
        return 130
    return 0
