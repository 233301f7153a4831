"""Keras 3 builders of AnyNet and RegNet models."""
