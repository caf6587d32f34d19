"""Training and evaluation data: the embedded synthetic chain task (`synthetic`)."""
