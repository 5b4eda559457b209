"""How use cases run: the change sequence and the background loops."""
