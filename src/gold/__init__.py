"""Gold layer: customer RFM, behaviour and business aggregates (issue 3)."""
