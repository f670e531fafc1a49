"""mos backends."""
