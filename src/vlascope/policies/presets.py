"""Policy names: the family that implements each and the config overrides that make it that
policy. Nothing here imports torch, so that the command line can list the names without loading
the models."""

# name -> (family, preset overrides of the family's config).
PRESETS = {
    "diffusion": ("chunking", {"head": "diffusion", "denoiser": "unet"}),
    "flow": ("chunking", {"head": "flow", "denoiser": "mlp"}),
    "mse": ("chunking", {"head": "mse"}),
    "act": ("act", {}),
    "vla": ("vla", {}),
}
POLICY_NAMES = tuple(PRESETS)
