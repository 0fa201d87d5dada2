"""Tools that read a synthesized cloud assembly: reader, review, diagram, cost estimate and summary."""
