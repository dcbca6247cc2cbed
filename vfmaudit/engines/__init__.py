"""How work is spread: the engine table (`local`, `ray`) and the one module that drives Ray.

Every command with an `--engine` option validates it here and runs its own workload per engine;
Ray is imported, started or joined, and fed to an actor pool only in `engines/ray.py`.
"""

from vfmaudit.engines.registry import Engine, engines, get_engine, register_engine
from vfmaudit.engines.shards import read_shard, shard_path, shard_plan, write_shard

__all__ = ["Engine", "engines", "get_engine", "register_engine", "shard_plan", "shard_path", "read_shard",
           "write_shard"]
