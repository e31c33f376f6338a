"""rerank-pipeline: async batch reranking of candidate lists through any rerank API.

The data flow mirrors the package layout::

    read/ -> chunk/ -> limit/ -> call/ (+ providers/) -> merge/ -> write/
                                   accounting/ counts beside every stage

`pipeline.run` prepares a job and wires the stages together (`prepare_job`, `run_job`);
`pipeline.errors` holds the exceptions every layer shares; `pipeline.cli` is the command line.
"""

__version__ = "0.1.0"
