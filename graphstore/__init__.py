"""graphstore stage."""
