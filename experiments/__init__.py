"""Studies built on the alexnet_jax package: sweeps, benchmarks, figures and the records they publish."""
