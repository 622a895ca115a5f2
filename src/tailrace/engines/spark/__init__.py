"""The "spark" engine: Hive scripts with their queries run by Spark SQL (local or a cluster).

Importing this package does not import pyspark; the session starts on the first run
(engines/spark/session.py). See docs/engines.md.
"""
