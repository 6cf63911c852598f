"""retail-segmentation: raw retail sales to customer segments and offers."""

__version__ = "0.1.0"
