"""vlascope: train, evaluate and diagnose robot manipulation policies."""

__version__ = "0.1.0"
