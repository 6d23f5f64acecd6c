"""Teacher networks (Flax modules) and the import of their pretrained weights."""
