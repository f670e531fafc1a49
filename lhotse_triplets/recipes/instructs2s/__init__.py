"""Recipe instructs2s (work in progress, issue 12)."""
