"""The command line as a user meets it: exit statuses, which stream says what, a reader
that leaves early, Ctrl-C, the failure table, and [eval] problems found before any request.
Real subprocesses of the CLI and real loopback servers."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import deque
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from tests.fake_server import Knobs, ThreadedServer
from tests.helpers import make_queries, write_grouped_parquet, write_pairs_jsonl

SAMPLE = "jobs/sample.toml"


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "RERANK_API_KEY": "sk-test"},
        **kwargs,
    )


def server_job(tmp: Path, input_path: Path, base_url: str, extra: str = "") -> Path:
    job = tmp / "job.toml"
    job.write_text(
        f'[input]\npath = "{input_path}"\n'
        f'[provider]\nkind = "jina"\nbase_url = "{base_url}"\napi_key_env = ""\n'
        "[limits]\nmax_concurrency = 1\nmax_attempts = 2\nmax_retry_wait_s = 0.01\n"
        f'[output]\ndir = "{tmp / "out"}"\n{extra}'
    )
    return job


# -- exit statuses ---------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_help_lists_every_exit_status(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0
    text = capsys.readouterr().out
    epilog = text[text.index("exit status:") :]
    codes = re.findall(r"^\s+(\d+)\s", epilog, flags=re.MULTILINE)
    assert codes == ["0", "1", "2", "3", "4", "130"]
    assert "--retry-failed" in epilog and "nothing was sent" in epilog


# -- stdout for tables, stderr for diagnostics -------------------------------------------
def test_run_and_estimate_tables_go_to_stdout_warnings_to_stderr(tmp_path):
    proc = cli("run", SAMPLE, "--set", f"output.dir={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    assert "queries   read 36" in proc.stdout and "ndcg@10" in proc.stdout
    assert "queries   read" not in proc.stderr and "ndcg@10" not in proc.stderr
    assert proc.stderr.startswith("warning: local BM25")  # the listwise warning
    proc = cli("estimate", SAMPLE, "--set", f"output.dir={tmp_path / 'out'}")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "nothing was sent" in proc.stdout


# -- a reader that leaves early: `| head` ------------------------------------------------
def closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone: every write is EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize("stderr_closed", [False, True])
def test_stdout_closed_early_changes_no_exit_status_and_prints_no_traceback(
    tmp_path, stderr_closed
):
    out = tmp_path / "out"
    runs = [
        (["run", SAMPLE, "--set", f"output.dir={out}"], 0),  # its table and the [eval] one
        (["estimate", SAMPLE, "--set", f"output.dir={out}"], 0),
        (["report", str(out)], 0),
        (["eval", str(out), "--qrels", "sample_data/qrels.txt"], 0),
        (["--help"], 0),
    ]
    for argv, expected in runs:
        stdout = closed_pipe()
        err_path = tmp_path / "stderr.txt"
        with open(err_path, "w") as err_file:
            stderr = closed_pipe() if stderr_closed else err_file
            proc = subprocess.run(
                [sys.executable, "-m", "pipeline", *argv],
                stdout=stdout,
                stderr=stderr,
                timeout=240,
            )
        os.close(stdout)
        if stderr_closed:
            os.close(stderr)
        err = err_path.read_text()
        assert proc.returncode == expected, (argv, err)
        assert "Traceback" not in err and "BrokenPipe" not in err, (argv, err)
        assert "Exception ignored" not in err, (argv, err)


def test_a_failed_query_still_exits_1_with_stdout_closed(tmp_path):
    queries = make_queries(3, 4, seed=71)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    with ThreadedServer(Knobs(reject_queries={queries[1]["query"]})) as server:
        job = server_job(tmp_path, path, server.base_url)
        stdout = closed_pipe()
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(job)],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
        os.close(stdout)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr


# -- the failure table -----------------------------------------------------------------
def test_end_table_says_why_queries_failed_which_retry_and_where(tmp_path):
    queries = make_queries(6, 4, seed=72)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    rejected = {queries[2]["query"], queries[4]["query"]}
    # The first request fails on both of its attempts (max_attempts = 2): transient.
    knobs = Knobs(reject_queries=rejected, script=deque(["503", "503"]))
    with ThreadedServer(knobs) as server:
        job = server_job(tmp_path, path, server.base_url)
        proc = cli("run", str(job))
        again = cli("run", str(job))  # resumed: nothing to do, the failures are still there
    assert proc.returncode == 1, proc.stderr
    assert again.returncode == 1, again.stderr
    assert "failures  3 queries in" in again.stdout and "3 from earlier runs" in again.stdout
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("failures  3 queries"))
    assert f"{tmp_path / 'out'}/failures/" in lines[start]
    http_400 = lines[start + 1].split()
    assert http_400[:4] == ["http_400", "2", "not", "retryable"], lines[start + 1]
    assert "HTTP 400" in lines[start + 1]  # a sample of the server's message
    http_503 = lines[start + 2].split()
    assert http_503[:3] == ["http_503", "1", "retryable"] and "HTTP 503" in lines[start + 2]
    assert "1 of them retryable" in lines[start + 3] and "--retry-failed" in lines[start + 3]


# -- [eval] checked before any request -------------------------------------------------
@pytest.mark.parametrize(
    "eval_section,complaint",
    [
        ('qrels = "{tmp}/missing.txt"', "qrels file not found"),
        ('qrels = "sample_data/qrels.txt"\nrelevance_threshold = 0', "relevance_threshold = 0"),
        ('qrels = "{tmp}/bad.txt"', "bad.txt line 2"),  # a malformed line
        ('qrels = "{tmp}/latin1.txt"', "cannot read as UTF-8"),  # unreadable as text
    ],
)
def test_eval_problems_stop_the_job_before_any_request(tmp_path, eval_section, complaint):
    (tmp_path / "bad.txt").write_text("q1 0 d1 1\nq1 0 d2\n")
    (tmp_path / "latin1.txt").write_bytes("q1 0 d\xe9 1\n".encode("latin-1"))
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(2, 3, seed=73))
    section = "[eval]\n" + eval_section.format(tmp=tmp_path) + "\n"
    with ThreadedServer() as server:
        proc = cli("run", str(server_job(tmp_path, path, server.base_url, section)))
        sent = len(server.log)
    assert proc.returncode == 2, proc.stderr
    assert sent == 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: eval.") and complaint in lines[0]


# -- empty input -----------------------------------------------------------------------
def test_an_empty_input_says_so_and_exits_0(tmp_path):
    path = tmp_path / "empty.parquet"
    empty = pa.table({"query_id": [], "query": [], "documents": []}).cast(
        pa.schema(
            [
                ("query_id", pa.string()),
                ("query", pa.string()),
                ("documents", pa.list_(pa.string())),
            ]
        )
    )
    pq.write_table(empty, path)
    section = '[eval]\nqrels = "sample_data/qrels.txt"\n'
    with ThreadedServer() as server:
        proc = cli("run", str(server_job(tmp_path, path, server.base_url, section)))
    assert proc.returncode == 0, proc.stderr
    assert "warning: the input held no queries: nothing was sent" in proc.stderr
    assert "evaluation skipped: no query has been ranked" in proc.stderr
    proc = cli("estimate", str(tmp_path / "job.toml"))
    assert proc.returncode == 0 and "the input held no queries" in proc.stdout


# -- Ctrl-C during estimate ------------------------------------------------------------
def holds_open(pid: int, folder: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd).startswith(f"{folder}/") for fd in fds.iterdir())
    except OSError:  # an fd closed while we looked
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_ctrl_c_during_estimate_is_one_line_and_130(tmp_path):
    # Several seconds of planning: 5 files of 240,000 rows each (links to one file).
    folder = tmp_path / "in"
    folder.mkdir()
    first = write_pairs_jsonl(folder / "part-0.jsonl", make_queries(4000, 60, seed=74))
    for i in range(1, 5):
        os.link(first, folder / f"part-{i}.jsonl")
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{folder}"\nlayout = "pairs"\n[provider]\nkind = "local"\n'
        f'[output]\ndir = "{tmp_path / "out"}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "estimate", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once it is reading the input: past start-up, inside the estimate.
    while not holds_open(proc.pid, folder):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        "interrupted: nothing was sent; no estimate.json written"
    ]
    assert stdout == "" and not (tmp_path / "out" / "estimate.json").exists()


# -- the listwise warning and the live progress bar ------------------------------------
def test_listwise_warning_is_written_above_the_progress_bar_not_into_it(tmp_path):
    # stderr is a terminal here, so the bar is live.
    master, slave = pty.openpty()
    # A new terminal is 0 columns wide, and tqdm draws nothing into 0 columns.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", SAMPLE, "--set", f"output.dir={tmp_path}"],
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(120) == 0
    text = b"".join(chunks).decode()
    assert "reranking" in text  # the bar was drawn
    at = text.index("warning: local BM25")
    line_so_far = text[:at].rsplit("\n", 1)[-1]
    # What the terminal shows before the warning on its line: nothing of the bar.
    assert line_so_far.rsplit("\r", 1)[-1].strip() == "", repr(line_so_far)
