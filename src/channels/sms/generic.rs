//! Provider-neutral JSON MO webhook (placeholder)
