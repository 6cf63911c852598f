"""Synthetic Online Retail II-shaped data: a seeded, distributed CSV generator."""
