"""Benchmarks of the TPMQuota provider through Pulumi's provider host (`python -m bench`)."""
