"""ML layer: segmentation sweep, registry, scoring and recommendations (issue 3)."""
