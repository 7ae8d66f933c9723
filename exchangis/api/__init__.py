"""HTTP layer: one blueprint module per resource, the envelope and the error mapping."""
