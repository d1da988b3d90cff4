"""Geometry and CRS shared by every part of the registry."""
