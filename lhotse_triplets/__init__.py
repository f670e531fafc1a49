"""lhotse-triplets: image+text instruction corpora to (image, spoken prompt) -> target text data."""

__version__ = "0.1.0"
