"""Which files in an output directory this tool wrote, and clearing only those.

    >>> import tempfile; from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()); (out / "eval").mkdir()
    >>> (out / "eval" / "metrics.py").write_text("# the user's own")
    16
    >>> foreign_files(out)
    ['eval/metrics.py']

`--overwrite` replaces an earlier output of this tool, nothing else: a file is ours when
it has one of the names the tool gives its files (the bookkeeping files beside the
datasets, part files and their temporary names in `results/`, `usage/`, `failures/`,
and the evaluation's outputs in `eval/`). Anything else in those folders belongs to
someone else, so the directory is refused, naming it, even with `--overwrite`; a folder is
removed only once it is empty. Files beside the folders that are not ours are never
looked at: they are simply left alone. On an object store (`pipeline.storage`) the same
rule holds for the keys under the output prefix, object by object.
"""

from __future__ import annotations

import re

from pipeline.errors import SetupError
from pipeline.storage import Location

DATASETS = ("results", "usage", "failures")
# Files this tool writes beside the datasets: the job record, the manifest, the run's
# resolved job and summary (and its temporary name while it is replaced), the estimate.
TOP_LEVEL = re.compile(
    r"_manifest\.jsonl|_job\.json|summary\.json|\.summary\.json\.tmp|job\.resolved\.toml"
    r"|estimate\.json"
)
PART = re.compile(r"part-\d{6}-[\w.-]+\.parquet|\.part-\d{6}-[\w.-]+\.parquet\.tmp")
EVAL = re.compile(r"per_query\.parquet|summary\.json|\w+\.trec|delta_\w+\.png")
SHOWN = 5  # foreign files named in the message; the rest are counted


def _folders() -> list[tuple[str, re.Pattern[str]]]:
    return [*((name, PART) for name in DATASETS), ("eval", EVAL)]


def foreign_files(out_dir: Location) -> list[str]:
    """What our folders (the datasets, `eval/`) hold that this tool did not write, as paths
    relative to `out_dir`: other files, links and any subfolder (we write none)."""
    foreign: list[str] = []
    for name, pattern in _folders():
        folder = out_dir / name
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            ours = path.is_file() and not path.is_symlink() and pattern.fullmatch(path.name)
            if not ours:
                foreign.append(f"{name}/{path.name}")  # relative to out_dir
    return sorted(foreign)


def clear_our_outputs(out_dir: Location) -> None:
    """Delete what an earlier run of this tool wrote into `out_dir`; refuse (SetupError,
    naming them) when our folders hold anything else, before deleting anything."""
    foreign = foreign_files(out_dir)
    if foreign:
        shown = ", ".join(foreign[:SHOWN])
        more = f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
        raise SetupError(
            f"output.dir {str(out_dir)!r} holds files this tool did not write ({shown}{more}); "
            "--overwrite deletes only its own outputs, so it leaves this directory as it is: "
            "choose another output.dir, or move those files away"
        )
    for name, _ in _folders():
        folder = out_dir / name
        if folder.is_dir():
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
    for path in out_dir.iterdir():
        if path.is_file() and TOP_LEVEL.fullmatch(path.name):
            path.unlink()
