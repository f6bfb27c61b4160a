from vlascope.policies.act.config import ActConfig
from vlascope.policies.act.model import ActPolicy

__all__ = ["ActConfig", "ActPolicy"]
