from vlascope.policies.vla.config import VlaConfig
from vlascope.policies.vla.model import VlaPolicy

__all__ = ["VlaConfig", "VlaPolicy"]
