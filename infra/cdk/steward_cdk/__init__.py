"""Steward as a CDK construct: see infra/cdk/README.md."""

from .steward import PARAMETERS, Steward

__all__ = ["PARAMETERS", "Steward"]
