"""Growth-prediction models: data, the hybrid PyTorch model, baselines, conformal intervals, the gate and the registry."""
