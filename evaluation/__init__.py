"""Evaluation lab: metrics, reference datasets, degradations and leaderboards.

Being built (see the evaluation issue); the built-in dataset's images live in
``examples/`` (``*_hq.png`` are the high-quality references).
"""
