"""rerank-pipeline: async batch reranking of candidate lists through any rerank API.

The data flow mirrors the package layout::

    read/ -> chunk/ -> limit/ -> call/ (+ providers/) -> merge/ -> write/
                                   accounting/ counts beside every stage

`pipeline.run` prepares a job and wires the stages together (`prepare_job`, `run_job`);
`pipeline.errors` holds the exceptions every layer shares; `pipeline.cli` is the command line.
"""

import os

__version__ = "0.1.0"

# Arrow's buffers from the C library's malloc, not its bundled mimalloc, which keeps what it
# has touched (about 50 MB more peak RSS per command: see pipeline.allocator). Set here, the
# first module any entry point imports, because Arrow reads it once, when its first buffer
# is allocated; a pool the user chose stays.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
