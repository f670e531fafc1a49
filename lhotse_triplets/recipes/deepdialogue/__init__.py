"""Recipe deepdialogue (work in progress, issue 12)."""
