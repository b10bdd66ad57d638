"""The data lake of shared department data (issue 8): ingest, columnar layout, queries.

Pure Python apart from the embedded engine (DuckDB, imported lazily where it runs): S3, Glue and
Athena are reached through :mod:`smartzone.repositories.datalake` only.
"""
