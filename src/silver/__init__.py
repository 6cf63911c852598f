"""Silver layer: typed, cleaned, deduplicated sale lines, a quarantine and a product table."""
