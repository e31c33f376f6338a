"""Know the bill before a run (`rerank-pipeline estimate`) and after it (`report`).

    from pipeline.estimate import estimate_job, load_calibration
    est = estimate_job(load_job("jobs/jina-nightly.toml"), calibration=load_calibration(Path("out/pilot")))
    est.requests, est.tokens, est.cost_usd, est.seconds

Billing rules and prices live in `pipeline.accounting.cost` and `pipeline.accounting.prices`.
"""

from pipeline.estimate.calibrate import Calibration, CalibrationError, load_calibration
from pipeline.estimate.counters import TokenizerCounter, TokenizerError
from pipeline.estimate.plan import Estimate, estimate_job
from pipeline.estimate.report import run_report

__all__ = [
    "Calibration",
    "CalibrationError",
    "Estimate",
    "TokenizerCounter",
    "TokenizerError",
    "estimate_job",
    "load_calibration",
    "run_report",
]
