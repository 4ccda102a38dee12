"""Demo and benchmark data: realistic, valid, deterministic for a given seed."""
