"""The feature spec: one declaration of every model input, shared by training and serving.

`features.toml` holds one `[[feature]]` table per column::

    [[feature]]
    name = "user_age"
    tower = "user"          # user | item
    kind = "numeric"        # id | categorical | numeric
    embedding_dim = 8       # id and categorical only; defaults below

Ids and categories are read as strings and looked up in vocabularies fitted on training
data (unknown values go to one out-of-vocabulary bucket); numeric features are standardised
with statistics fitted on training data. Both live inside the exported tower graphs.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from recsys.artifacts.errors import DataError

TOWERS = ("user", "item")
KINDS = ("id", "categorical", "numeric")
KEYS = {"user": "user_id", "item": "item_id"}  # the join key of each tower's table
DEFAULT_EMBEDDING_DIM = {"id": 32, "categorical": 8}
# Names become graph input names, so keep them identifiers.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class Feature:
    name: str
    tower: str
    kind: str
    embedding_dim: int | None = None

    @property
    def is_numeric(self) -> bool:
        return self.kind == "numeric"

    @property
    def dim(self) -> int:
        """Width this feature contributes to its tower's input."""
        if self.is_numeric:
            return 1
        return self.embedding_dim or DEFAULT_EMBEDDING_DIM[self.kind]


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[Feature, ...]

    def tower(self, tower: str) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.tower == tower)

    def names(self, tower: str) -> list[str]:
        return [f.name for f in self.tower(tower)]

    def to_list(self) -> list[dict]:
        return [{k: v for k, v in asdict(f).items() if v is not None} for f in self.features]

    @classmethod
    def from_list(cls, rows: list[dict], where: str = "feature spec") -> FeatureSpec:
        if not isinstance(rows, list) or not rows:
            raise DataError(f"{where}: no [[feature]] tables")
        features, seen = [], set()
        for i, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise DataError(f"{where}: feature #{i} is not a table")
            unknown = set(row) - {"name", "tower", "kind", "embedding_dim"}
            if unknown:
                raise DataError(f"{where}: feature #{i} has unknown key(s) {sorted(unknown)}")
            name, tower, kind = row.get("name"), row.get("tower"), row.get("kind")
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise DataError(f"{where}: feature #{i} needs a 'name' made of letters, digits and _ (got {name!r})")
            if tower not in TOWERS:
                raise DataError(f"{where}: feature '{name}' has tower {tower!r}; expected one of {list(TOWERS)}")
            if kind not in KINDS:
                raise DataError(f"{where}: feature '{name}' has unknown kind {kind!r}; expected one of {list(KINDS)}")
            dim = row.get("embedding_dim")
            if dim is not None:
                if kind == "numeric":
                    raise DataError(f"{where}: numeric feature '{name}' takes no embedding_dim")
                if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 1024:
                    raise DataError(f"{where}: feature '{name}' embedding_dim must be an integer in 1..1024")
            if name in seen:
                raise DataError(f"{where}: feature '{name}' is declared twice")
            if name in KEYS.values() and KEYS[tower] != name:
                raise DataError(f"{where}: feature '{name}' belongs to the other tower")
            seen.add(name)
            features.append(Feature(name, tower, kind, dim))
        spec = cls(tuple(features))
        for tower in TOWERS:
            if not spec.tower(tower):
                raise DataError(f"{where}: the {tower} tower has no features")
        return spec

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: features.toml not found")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: unreadable ({e.strerror if isinstance(e, OSError) else e})") from None
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise DataError(f"{path}: not valid TOML ({e})") from None
        except RecursionError:  # arrays nested thousands deep
            raise DataError(f"{path}: not valid TOML (nested too deep)") from None
        return cls.from_list(doc.get("feature", []), where=str(path))

    def dump(self, path: str | Path) -> None:
        lines = []
        for f in self.features:
            lines += ["[[feature]]", f'name = "{f.name}"', f'tower = "{f.tower}"', f'kind = "{f.kind}"']
            if f.embedding_dim is not None:
                lines.append(f"embedding_dim = {f.embedding_dim}")
            lines.append("")
        Path(path).write_text("\n".join(lines))
