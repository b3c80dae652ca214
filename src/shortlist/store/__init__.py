"""The on-disk index: manifest, segments and atomic generations."""
