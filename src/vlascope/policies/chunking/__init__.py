from vlascope.policies.chunking.config import ChunkingPolicyConfig
from vlascope.policies.chunking.model import ChunkingPolicy

__all__ = ["ChunkingPolicyConfig", "ChunkingPolicy"]
