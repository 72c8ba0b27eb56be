"""MovieLens "latest small": ratings as events, movies (genres + user tags) as items.

Lookup order: ``local_dir`` (checksum mismatch only warns: it may be a deliberately edited
copy), then ``cache_dir/<archive name>`` (mismatch is an error: the cache is corrupt), then a
download of the official zip into that cache, verified before it is used.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from recops.columns import Columns
from recops.config import shared_state_root
from recops.data.hashing import file_sha256
from recops.data.sources.base import RawData
from recops.data.sources.events import EVENT_TARGETS, ITEM_TARGETS, read_mapped
from recops.errors import ConfigError, DataSourceError

logger = logging.getLogger(__name__)

RATINGS, MOVIES, TAGS = "ratings.csv", "movies.csv", "tags.csv"
REQUIRED_FILES = (RATINGS, MOVIES)
DATA_FILES = (RATINGS, MOVIES, TAGS)
NO_GENRES = "(no genres listed)"
EVENT_TYPE = "rating"
_RATING_COLUMNS = {
    "user": "userId",
    "item": "movieId",
    "timestamp": "timestamp",
    "rating": "rating",
}
_MOVIE_COLUMNS = {"item": "movieId", "title": "title", "tags": "genres"}
_TAG_COLUMNS = {"item": "movieId", "tag": "tag"}
_TOKEN = "token"


def _has_data(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def _mismatches(folder: Path, sha256: Mapping[str, str]) -> list[str]:
    """Human descriptions of the files in ``folder`` whose sha256 differs from the expected one."""
    problems = []
    for name in DATA_FILES:
        path, expected = folder / name, sha256.get(name)
        if not path.is_file():
            continue
        if not expected:
            logger.warning("%s: no expected sha256 configured, not verified", path)
            continue
        actual = file_sha256(path)
        if actual != expected.lower():
            problems.append(f"{path}: sha256 {actual} != expected {expected}")
    return problems


def _download(url: str, target: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataSourceError(f"downloading {url} failed: {reason}") from exc


def _extract(archive: Path, url: str, into: Path) -> None:
    """Copy the data files (by base name, so no path in the archive can escape) into ``into``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {PurePosixPath(m).name: m for m in zf.namelist() if not m.endswith("/")}
            absent = [name for name in REQUIRED_FILES if name not in members]
            if absent:
                raise DataSourceError(f"{url}: archive lacks {absent}; it has {sorted(members)}")
            for name in DATA_FILES:
                if name in members:
                    (into / name).write_bytes(zf.read(members[name]))
    except zipfile.BadZipFile as exc:
        raise DataSourceError(f"{url}: downloaded file is not a zip archive ({exc})") from exc


class MovieLensSource:
    """The MovieLens ratings/movies/tags CSVs, read raw (strings) for validation to type."""

    def __init__(
        self,
        local_dir: str,
        url: str,
        cache_dir: str,
        sha256: Mapping[str, str],
        name: str = "movielens_small",
        timeout: float = 60.0,
    ) -> None:
        # Relative to the project root; `shared_state_root` also escapes the temporary copies
        # `dvc exp run --temp/--queue` works in, where `../shared` would not exist.
        self.local_dir = _project_relative(local_dir)
        self.url = url
        self.cache_dir = _project_relative(cache_dir)
        self.sha256 = {str(k): str(v) for k, v in dict(sha256).items()}
        self.name = name
        self.timeout = timeout

    @property
    def cached_dir(self) -> Path:
        """Where a download is kept: ``cache_dir`` / the archive's name without ``.zip``."""
        stem = PurePosixPath(urlparse(self.url).path).stem or self.name
        return self.cache_dir / stem

    def locate(self) -> Path:
        """The folder to read from, downloading into the cache when needed."""
        if _has_data(self.local_dir):
            for problem in _mismatches(self.local_dir, self.sha256):
                logger.warning("checksum mismatch (local copy used anyway): %s", problem)
            return self.local_dir
        if _has_data(self.cached_dir):
            problems = _mismatches(self.cached_dir, self.sha256)
            if problems:
                raise DataSourceError(
                    f"corrupt MovieLens cache, delete {self.cached_dir} to download again: "
                    + "; ".join(problems)
                )
            return self.cached_dir
        return self._fetch()

    def _fetch(self) -> Path:
        logger.info(
            "MovieLens not in %s or %s; downloading %s", self.local_dir, self.cached_dir, self.url
        )
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".movielens-", dir=self.cache_dir))
        try:
            archive = staging / "archive.zip"
            try:
                _download(self.url, archive, self.timeout)
            except DataSourceError as exc:
                raise DataSourceError(
                    f"MovieLens files {list(REQUIRED_FILES)} are in neither {self.local_dir} nor "
                    f"{self.cached_dir}, and {exc}"
                ) from exc
            files = staging / "files"
            files.mkdir()
            _extract(archive, self.url, files)
            problems = _mismatches(files, self.sha256)
            if problems:
                raise DataSourceError(f"{self.url}: checksum mismatch: " + "; ".join(problems))
            if self.cached_dir.exists():
                shutil.rmtree(self.cached_dir)
            files.rename(self.cached_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.cached_dir

    def load(self) -> RawData:
        folder = self.locate()
        events = self._events(folder / RATINGS)
        items = self._items(folder / MOVIES, folder / TAGS)
        paths = [folder / name for name in DATA_FILES if (folder / name).is_file()]
        return RawData(
            events=events, items=items, origin=str(folder), content_hash=file_sha256(*paths)
        )

    @staticmethod
    def _events(path: Path) -> pd.DataFrame:
        frame = read_mapped(path, "csv", _RATING_COLUMNS, EVENT_TARGETS)
        frame[Columns.event_type] = EVENT_TYPE
        frame[Columns.weight] = 1.0
        frame[Columns.source_row] = np.arange(1, len(frame) + 1, dtype="int64")
        return frame[[*EVENT_TARGETS.values(), Columns.source_row]]

    @staticmethod
    def _items(movies_path: Path, tags_path: Path) -> pd.DataFrame:
        movies = read_mapped(movies_path, "csv", _MOVIE_COLUMNS, ITEM_TARGETS)
        genres = movies[Columns.tags].fillna(NO_GENRES)
        tags = (
            read_mapped(tags_path, "csv", _TAG_COLUMNS, {**ITEM_TARGETS, "tag": _TOKEN})
            if tags_path.is_file()
            else pd.DataFrame({Columns.item: [], _TOKEN: []})
        )
        movies[Columns.category] = genres.str.split("|").str[0]
        movies[Columns.brand] = None
        movies[Columns.price] = np.nan
        movies[Columns.tags] = movies[Columns.item].map(
            _tag_strings(movies[Columns.item], genres, tags)
        )
        return movies[list(ITEM_TARGETS.values())]


def _tag_strings(item_ids: pd.Series, genres: pd.Series, tags: pd.DataFrame) -> pd.Series:
    """item_id -> "|"-joined lower-case tokens: the genres, then user tags, first use wins."""
    genre_tokens = pd.DataFrame({Columns.item: item_ids, _TOKEN: genres.str.split("|")}).explode(
        _TOKEN
    )
    genre_tokens = genre_tokens[genre_tokens[_TOKEN].ne(NO_GENRES)]
    tokens = pd.concat([genre_tokens, tags[[Columns.item, _TOKEN]]], ignore_index=True)
    tokens[_TOKEN] = (
        tokens[_TOKEN].fillna("").str.replace("|", " ", regex=False).str.strip().str.lower()
    )
    tokens = tokens[tokens[_TOKEN].ne("")].drop_duplicates()
    return tokens.groupby(Columns.item, sort=False)[_TOKEN].agg("|".join)


def _project_relative(path: str) -> Path:
    p = Path(path)
    if p.is_absolute():
        return p
    try:
        return shared_state_root() / p
    except ConfigError:  # used outside a project: relative to the working directory
        return p
