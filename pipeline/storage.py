"""Where files live: a local path, or an object-store URL (`s3://`, and what `pyarrow.fs` resolves).

    >>> location("out/run1")
    PosixPath('out/run1')
    >>> check_url("s3://bucket/runs/run1", "output.dir")
    >>> check_url("s3://AKIA:secret@bucket/runs", "output.dir")
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: output.dir: 's3://***@bucket/runs' carries credentials; ...

A local path stays a `pathlib.Path`, so the local code paths are exactly pathlib's. A URL
becomes an `ObjectPath`: the small part of the `Path` interface the pipeline uses (`/`,
`name`, `exists`, `iterdir`, `read_bytes`, `write_bytes`, `unlink`, `stat().st_size`,
`open("rb")`), over a `pyarrow.fs.FileSystem`. The code that must differ (how a file is
published: a local rename, an object-store PUT) tests `isinstance(x, ObjectPath)`.

Credentials and the endpoint come from the environment only, as every AWS tool reads them
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_PROFILE`,
`AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` for an S3-compatible store), never
from the job file: a URL with credentials or options in it is refused (`check_url`), and
the text of a URL we print is the URL as given, which then holds no secret.

On an object store, a key written by one `write_bytes` (one PUT, or one completed multipart
upload) appears whole or not at all: there is no rename, and no append.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.errors import ConfigError

READ_BUFFER = 1 << 20  # bytes per GET when a remote file is read as a stream
UPLOAD_CHUNK = 8 << 20


def is_url(text: str | os.PathLike[str]) -> bool:
    """A `scheme://` URL other than `file://` (a local path, as a Path)."""
    found = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", str(text))
    return found is not None and found.group(1).lower() != "file"


def check_url(text: str, key: str) -> None:
    """Refuse a URL that carries credentials or options (the job file is no place for
    them; the message shows the URL with that part hidden)."""
    if not is_url(text):
        return
    parts = urlsplit(text)
    if "@" in parts.netloc:
        shown = f"{parts.scheme}://***@{parts.netloc.rsplit('@', 1)[1]}{parts.path}"
        raise ConfigError(
            f"{key}: {shown!r} carries credentials; they are never read from the job file: "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the "
            "environment and give the URL without them"
        )
    if parts.query or parts.fragment:
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}?***"
        raise ConfigError(
            f"{key}: {shown!r} has URL options; the store's endpoint, region and credentials "
            "come from the environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY): give the URL without '?...'"
        )


def location(
    text: str | os.PathLike[str] | ObjectPath,
    key: str = "path",
    error: type[Exception] = ConfigError,
) -> Location:
    """`text` as a local `Path`, or as an `ObjectPath` when it is a URL; `error` (an
    exception class) names `key` when the URL's filesystem cannot be set up."""
    if isinstance(text, (Path, ObjectPath)):
        return text
    text = str(text)
    if not is_url(text):
        return Path(text[len("file://") :] if text.startswith("file://") else text)
    try:
        check_url(text, key)
    except ConfigError as exc:
        raise error(str(exc)) from None
    scheme, rest = text.split("://", 1)
    scheme, path, root = scheme.lower(), rest.strip("/"), f"{scheme}://"
    try:
        if scheme in ("s3", "s3a"):
            fs: pafs.FileSystem = _s3(path.split("/", 1)[0])
        else:  # gs://bucket/key, hdfs://host:port/path...: as pyarrow resolves them
            fs, path = pafs.FileSystem.from_uri(text)
            path, body = path.rstrip("/"), text.rstrip("/")
            if path and body.endswith(path):  # the URL's own host part, for messages
                root = body[: len(body) - len(path)]
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise error(f"{key} {text!r}: cannot open its filesystem ({exc})") from None
    return ObjectPath(fs, scheme, path, root=root)


ENV_KEYS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


def _s3(bucket: str) -> pafs.S3FileSystem:
    # The variables are part of the cache key: a changed environment, a new filesystem.
    names = (*ENV_KEYS, "AWS_ACCESS_KEY_ID", "AWS_PROFILE")
    return _s3_filesystem(bucket, tuple(os.environ.get(n) for n in names))


@functools.lru_cache(maxsize=16)
def _s3_filesystem(bucket: str, env: tuple[str | None, ...]) -> pafs.S3FileSystem:
    """The endpoint and region from the environment, passed explicitly: not every pyarrow
    reads AWS_ENDPOINT_URL, and an http:// endpoint needs scheme="http"."""
    kwargs: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    elif not endpoint and bucket:
        # AWS itself: the bucket's region, as FileSystem.from_uri finds it (failing that,
        # the SDK's default: a wrong region then fails on first use, named).
        with contextlib.suppress(OSError, pa.ArrowException):
            kwargs["region"] = pafs.resolve_s3_region(bucket)
    return pafs.S3FileSystem(**kwargs)


class ObjectPath:
    """A file or prefix on a `pyarrow.fs` filesystem, with the `Path` methods we use."""

    __slots__ = ("fs", "scheme", "path", "root", "_type", "_size")

    def __init__(
        self, fs: pafs.FileSystem, scheme: str, path: str, info: Any = None, root: str = ""
    ):
        """`path` as the filesystem names it ("bucket/key"); `root` what precedes it in
        the URL ("s3://", the default)."""
        self.fs, self.scheme, self.path = fs, scheme, path.rstrip("/")
        self.root = root or f"{scheme}://"
        self._type = info.type if info is not None else None  # from a listing: no HEAD
        self._size = info.size if info is not None else None

    def at(self, path: str, info: Any = None) -> ObjectPath:
        """Another path on the same filesystem."""
        return ObjectPath(self.fs, self.scheme, path, info, self.root)

    def __str__(self) -> str:
        return f"{self.root}{self.path}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (other.scheme, other.path) == (
            self.scheme,
            self.path,
        )

    def __hash__(self) -> int:
        return hash((self.scheme, self.path))

    def __truediv__(self, name: str) -> ObjectPath:
        return self.at(f"{self.path}/{name}")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> ObjectPath:
        return self.at(self.path.rsplit("/", 1)[0])

    def _file_type(self) -> Any:
        if self._type is None:
            info = self.fs.get_file_info(self.path)
            self._type, self._size = info.type, info.size
        return self._type

    def exists(self) -> bool:
        return self._file_type() != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._file_type() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._file_type() == pafs.FileType.Directory

    def is_symlink(self) -> bool:
        return False

    def stat(self) -> SimpleNamespace:
        if not self.is_file():
            raise FileNotFoundError(2, "no such object", str(self))
        return SimpleNamespace(st_size=self._size)

    def iterdir(self) -> Iterator[ObjectPath]:
        yield from self._listing(recursive=False)

    def files(self) -> list[ObjectPath]:
        """Every object under this prefix, at any depth, sorted."""
        return sorted(
            (p for p in self._listing(recursive=True) if p._type == pafs.FileType.File),
            key=lambda p: p.path,
        )

    def _listing(self, recursive: bool) -> Iterator[ObjectPath]:
        selector = pafs.FileSelector(self.path, allow_not_found=True, recursive=recursive)
        for info in self.fs.get_file_info(selector):
            yield self.at(info.path, info)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: an object store has no folders, only key prefixes."""

    def rmdir(self) -> None:
        """Nothing to do: a prefix is gone with its last object."""

    def open(self, mode: str = "rb") -> io.BufferedReader:
        if mode != "rb":
            raise ValueError(f"{self}: only read as a stream ('rb'); write with write_bytes")
        try:
            raw = self.fs.open_input_stream(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(2, "no such object", str(self)) from None
        return io.BufferedReader(raw, READ_BUFFER)  # a NativeFile has readinto: buffered lines

    def read_bytes(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes | pa.Buffer) -> int:
        """One PUT: the object appears whole, replacing any earlier one, or not at all."""
        with self.fs.open_output_stream(self.path) as out:
            out.write(data)
        self._type, self._size = pafs.FileType.File, len(data)
        return len(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> int:
        return self.write_bytes(text.encode(encoding))

    def upload(self, local: Path) -> None:
        """The local file `local` as this object (one PUT or multipart upload, completed
        only at the end: the object appears whole or not at all)."""
        with local.open("rb") as src, self.fs.open_output_stream(self.path) as out:
            shutil.copyfileobj(src, out, UPLOAD_CHUNK)
        self._type = None

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise
        self._type = pafs.FileType.NotFound


Location: TypeAlias = "Path | ObjectPath"  # a local file or folder, or one on a store


@contextlib.contextmanager
def local_folder(target: Location, last: str = "summary.json") -> Iterator[Path]:
    """A local folder whose files end up in `target`: `target` itself when it is local;
    else a temporary folder, uploaded file by file into `target` when the block succeeds
    (`last` at the end: the file that says the others are complete)."""
    if isinstance(target, Path):
        yield target
        return
    with tempfile.TemporaryDirectory(prefix="rerank-pipeline-") as staging:
        yield Path(staging)
        for file in sorted(Path(staging).iterdir(), key=lambda f: f.name == last):
            (target / file.name).upload(file)


def parquet_file(where: Location, **options: Any) -> pq.ParquetFile:
    """`pq.ParquetFile` of a local or remote file (remote: read by ranged GETs), read as a
    stream: pyarrow's default `pre_buffer` keeps every column chunk an `iter_batches` has
    read until the file is closed (iterating a 1M-query pairs file held 922 MB of Arrow
    memory at its end; streamed: under 10 MB)."""
    options.setdefault("pre_buffer", False)
    options.setdefault("buffer_size", READ_BUFFER)
    if isinstance(where, ObjectPath):
        return pq.ParquetFile(where.fs.open_input_file(where.path), **options)
    return pq.ParquetFile(where, **options)


def read_table(where: Location) -> pa.Table:
    return parquet_file(where).read()


def write_parquet_object(target: ObjectPath, table: pa.Table) -> None:
    """`table` as one Parquet object, encoded in memory (a flush's part: bounded by
    `output.flush_rows`) and sent in one PUT."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    target.write_bytes(sink.getvalue())


def polars_source(parts: list[Location]) -> tuple[list[str], dict[str, str] | None]:
    """`parts` as polars reads them: their paths or URLs, and the `storage_options` for an
    S3 endpoint from the environment (polars reads the credentials itself)."""
    options: dict[str, str] | None = None
    if any(isinstance(p, ObjectPath) and p.scheme in ("s3", "s3a") for p in parts):
        options = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["aws_endpoint_url"] = endpoint
            if endpoint.startswith("http://"):
                options["aws_allow_http"] = "true"
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["aws_region"] = region
    return [str(p) for p in parts], options or None


GLOB = re.compile(r"\*\*/?|\*|\?|\[[^]]*\]|[^*?[]+")


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """A glob over keys as a regex: `*` and `?` stay within one `/` segment, `**` spans any.

    >>> bool(glob_pattern("b/in/*.parquet").fullmatch("b/in/x.parquet"))
    True
    >>> bool(glob_pattern("b/in/*.parquet").fullmatch("b/in/sub/x.parquet"))
    False
    >>> bool(glob_pattern("b/**/*.parquet").fullmatch("b/in/sub/x.parquet"))
    True
    """
    out = []
    for token in GLOB.findall(pattern):
        if token.startswith("**"):
            out.append("(?:.*/)?" if token.endswith("/") else ".*")
        elif token == "*":
            out.append("[^/]*")
        elif token == "?":
            out.append("[^/]")
        elif token.startswith("["):
            out.append(token.replace("[!", "[^", 1))
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))
