"""speaker backends: one L2-normalised embedding per clip (:class:`~lhotse_triplets.backends.base.
SpeakerBackend`). ``resemblyzer`` runs offline (its weights ship in its wheel); ``wavlm``
(transformers) and ``ecapa`` (SpeechBrain) load their weights from a model hub or a local copy."""
