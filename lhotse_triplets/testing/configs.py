"""Run configurations for tests: the whole pipeline on the dummy backends (fast, no models)."""

#: ``run`` on the dummy backends: 8 prompts of the sample corpus in en and fr, two voices each,
#: 3 prompts per shard, a gate that rejects some clips, Shar and triplets exports.
DUMMY_RUN = {
    "languages": ["en", "fr"],
    "prepare": {"recipe": "sample", "options": {"num_conversations": 6}},
    "rephrase": {"embed": {"name": "dummy"}},
    "synthesize": {"tts": {"default": {"name": "dummy"}}, "voices_per_prompt": 2},
    "score": {"asr": {"name": "dummy"}, "embed": {"name": "dummy"}, "mos": {"name": "dummy"}},
    "gate": {"min_similarity": 0.9, "max_error_rate": 0.1, "min_mos": 2.0},
    "export": {"formats": ["shar", "triplets"]},
    "shard_size": 3,
}
