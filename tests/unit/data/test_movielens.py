"""MovieLensSource: the real dataset (when present), checksums, cache and download failures.

No test touches the network: downloads use file:// URLs or a closed port on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import time
import zipfile
from pathlib import Path

import pytest

from recops.columns import Columns
from recops.data.sources.movielens import MovieLensSource
from recops.data.validation import validate_events, validate_items
from recops.errors import DataSourceError

ML_DIR = Path(__file__).resolve().parents[3] / ".." / "shared/datasets/ml-latest-small"
ML_SHA256 = {
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
}
needs_movielens = pytest.mark.skipif(
    not ML_DIR.is_dir(), reason=f"MovieLens small not found at {ML_DIR} (shared datasets absent)"
)

TINY = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n2,20,3.5,964982224\n",
    "movies.csv": "movieId,title,genres\n10,Alpha (1995),Comedy|Drama\n"
    "20,Beta (2001),(no genres listed)\n",
    "tags.csv": "userId,movieId,tag,timestamp\n1,10,Funny,1\n2,10,funny,2\n2,20,Dark,3\n",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tiny_zip(tmp_path: Path, files: dict[str, str] = TINY) -> str:
    archive = tmp_path / "ml-tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"ml-tiny/{name}", text)
    return archive.as_uri()


@needs_movielens
def test_reads_the_real_dataset() -> None:
    source = MovieLensSource(
        str(ML_DIR), "http://127.0.0.1:1/unused.zip", "/nonexistent", ML_SHA256
    )
    raw = source.load()
    assert len(raw.events) == 100_836
    assert raw.items is not None and len(raw.items) == 9_742
    events = validate_events(raw.events, raw.origin)
    assert events.counts["valid"] == 100_836 and events.valid[Columns.user].nunique() == 610
    assert (events.valid[Columns.event_type] == "rating").all()
    items = validate_items(raw.items, raw.origin).valid.set_index(Columns.item)
    toy_story = items.loc["1"]
    assert toy_story[Columns.category] == "Adventure"
    assert toy_story[Columns.tags].startswith("adventure|animation|children|comedy|fantasy|")
    assert "pixar" in toy_story[Columns.tags].split("|")


@needs_movielens
def test_local_checksum_mismatch_only_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "ml"
    copy.mkdir()
    for name in ("ratings.csv", "movies.csv"):
        shutil.copy(ML_DIR / name, copy / name)
    with (copy / "ratings.csv").open("a") as handle:
        handle.write("1,1,5.0,1000000000\n")
    logger = logging.getLogger("recops.data.sources.movielens")
    logger.addHandler(caplog.handler)  # works even when "recops" does not propagate to root
    try:
        with caplog.at_level(logging.WARNING, logger=logger.name):
            raw = MovieLensSource(
                str(copy), "http://127.0.0.1:1/x.zip", str(tmp_path), ML_SHA256
            ).load()
    finally:
        logger.removeHandler(caplog.handler)
    assert len(raw.events) == 100_837
    # a set: the record may reach caplog twice (own handler + propagation to root)
    mismatch = sorted(
        {r.getMessage() for r in caplog.records if "checksum mismatch" in r.getMessage()}
    )
    assert len(mismatch) == 1
    assert "ratings.csv" in mismatch[0] and ML_SHA256["ratings.csv"] in mismatch[0]


def test_missing_everywhere_and_download_fails_quickly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/ml-latest-small.zip"
    source = MovieLensSource(str(tmp_path / "absent"), url, str(tmp_path / "cache"), ML_SHA256)
    start = time.monotonic()
    with pytest.raises(DataSourceError) as err:
        source.load()
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "absent" in message and "cache" in message and url in message
    missing_file = (tmp_path / "nope.zip").as_uri()
    with pytest.raises(DataSourceError, match="downloading file://"):
        MovieLensSource(str(tmp_path / "absent"), missing_file, str(tmp_path / "c2"), {}).load()


def test_download_is_verified_and_cached(tmp_path: Path) -> None:
    url = tiny_zip(tmp_path)
    expected = {name: sha(text) for name, text in TINY.items()}
    source = MovieLensSource(str(tmp_path / "absent"), url, str(tmp_path / "cache"), expected)
    raw = source.load()
    assert source.cached_dir == tmp_path / "cache" / "ml-tiny"
    assert raw.origin == str(source.cached_dir)
    assert raw.events[Columns.user].tolist() == ["1", "2"]
    assert raw.items is not None
    assert raw.items[Columns.tags].tolist() == ["comedy|drama|funny", "dark"]
    assert raw.items[Columns.category].tolist() == ["Comedy", "(no genres listed)"]
    (tmp_path / "ml-tiny.zip").unlink()  # the second load must come from the cache
    assert len(source.load().events) == 2


def test_download_checksum_mismatch_is_an_error_and_caches_nothing(tmp_path: Path) -> None:
    url = tiny_zip(tmp_path)
    expected = {name: sha(text) for name, text in TINY.items()}
    expected["ratings.csv"] = "0" * 64
    source = MovieLensSource(str(tmp_path / "absent"), url, str(tmp_path / "cache"), expected)
    with pytest.raises(DataSourceError) as err:
        source.load()
    message = str(err.value)
    assert "ratings.csv" in message and "0" * 64 in message and sha(TINY["ratings.csv"]) in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_corrupt_cache_is_an_error(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "ml-tiny"
    cached.mkdir(parents=True)
    for name, text in TINY.items():
        (cached / name).write_text(text)
    expected = {name: sha(text) for name, text in TINY.items()}
    (cached / "movies.csv").write_text(TINY["movies.csv"] + "30,Gamma (2010),Drama\n")
    source = MovieLensSource(
        str(tmp_path / "absent"), "file:///ml-tiny.zip", str(tmp_path / "cache"), expected
    )
    with pytest.raises(DataSourceError, match=r"corrupt MovieLens cache.*movies\.csv"):
        source.load()


def test_archive_without_ratings_is_an_error(tmp_path: Path) -> None:
    url = tiny_zip(tmp_path, {"movies.csv": TINY["movies.csv"]})
    source = MovieLensSource(str(tmp_path / "absent"), url, str(tmp_path / "cache"), {})
    with pytest.raises(DataSourceError, match=r"archive lacks \['ratings.csv'\]"):
        source.load()
