"""Batch jobs: a queue of restorations in SQLite or PostgreSQL, files behind fsspec.

    python -m jobs submit --task sr --model span-x4-ch48 photos/
    python -m jobs worker --concurrency 2
    python -m jobs status | report | export

`store` holds the tables (SQLAlchemy, versioned schema), `storage` the files (a local
folder or any fsspec URL), `submit` turns files and ZIPs into jobs, `worker` claims and
runs them with leases, `report` and `export` hand the results back.
"""
