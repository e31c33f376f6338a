"""rerank-pipeline: async batch reranking of candidate lists through any rerank API.

The data flow mirrors the package layout::

    read/ -> chunk/ -> limit/ -> call/ (+ providers/) -> merge/ -> write/
                                   accounting/ counts beside every stage

`pipeline.runner.run_job` wires the stages together; `pipeline.cli` is the command line.
"""

__version__ = "0.1.0"
