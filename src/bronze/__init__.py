"""Bronze layer: landed CSV files -> `bronze_transactions`, every source column kept as text."""
