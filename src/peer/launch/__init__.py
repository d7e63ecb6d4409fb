"""``tools/launch``: a whole scenario as real node processes on 127.0.0.1."""
