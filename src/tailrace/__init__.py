"""tailrace: a self-hosted pipeline service for web logs.

Runs AWS Data Pipeline definitions and Hive scripts unchanged, on embedded defaults
(SQLite, a local directory as the object store, DuckDB) or on existing engines.
"""

__version__ = "0.1.0"
