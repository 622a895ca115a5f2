"""AWS Data Pipeline's wire shapes for the service's reads: DescribePipelines, ListPipelines,
DescribeObjects, QueryObjects and its selectors (describe.py, objects.py, selectors.py), the
runs listing (runs.py) and PollForTask's taskObject (tasks.py). The runtime answers with
records (tailrace.runtime.reads, tailrace.state); these modules shape them for the wire.
"""
