"""The insights report: one self-contained HTML file over the gold tables and MLflow."""
