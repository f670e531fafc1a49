"""Recipe multidialog (work in progress, issue 12)."""
