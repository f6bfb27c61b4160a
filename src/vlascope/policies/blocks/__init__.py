"""Building blocks shared by every policy: observation encoders, denoiser networks, action heads."""
