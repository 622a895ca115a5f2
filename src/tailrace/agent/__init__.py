"""`tailrace agent`: follow access logs, parse them, buffer durably, ship them to the object store.

Public API: `load_config` / `parse_config` (agent.toml into an `AgentConfig`) and `Agent`
(`Agent(config, storage=Storage).run()`, or `step()` / `flush()` driven by a test clock).
See docs/agent.md.
"""

from tailrace.agent.config import AgentConfig, MatchConfig, ParseConfig, SourceConfig, SystemConfig
from tailrace.agent.configfile import load_config, parse_config
from tailrace.agent.core import Agent

__all__ = [
    "Agent",
    "AgentConfig",
    "MatchConfig",
    "ParseConfig",
    "SourceConfig",
    "SystemConfig",
    "load_config",
    "parse_config",
]
