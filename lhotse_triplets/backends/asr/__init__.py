"""asr backends."""
