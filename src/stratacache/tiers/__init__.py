"""Storage tiers: where cached bytes (or immutable values) actually live."""
