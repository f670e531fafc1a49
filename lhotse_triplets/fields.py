"""The one place where custom-field names live.

Lhotse's own fields are used where they exist: the spoken text is ``supervision.text``, the
language ``supervision.language`` (ISO 639-1) and the voice ``supervision.speaker``. Everything
else a cut carries is a custom field named here; other modules import these constants and never
spell the strings themselves.
"""

# --- prompt (text) fields, set by ``prepare`` ---------------------------------------------------
#: The image the user turn talks about: a :class:`lhotse.image.Image` manifest (``attach_image``)
#: in prepared cuts, the encoded image bytes (1-D ``uint8`` array) inside exported Shar.
IMAGE = "image"
#: Id of the source conversation (the corpus' own id).
CONVERSATION_ID = "conversation_id"
#: 0-based index of the user turn inside its conversation.
TURN = "turn"
#: The user turn as written in the source, placeholders (``<image>``) removed.
USER_TEXT = "user_text"
#: The placeholders removed from the user turn, in order (e.g. ``["<image>"]``).
PLACEHOLDERS = "placeholders"
#: The assistant's reply to this user turn, verbatim: the training target.
ANSWER = "answer"
#: Text of the earlier turns (NeMo's ``sqa_as_conversation`` reads ``context``).
CONTEXT = "context"
#: System prompt (NeMo reads ``system_prompt``).
SYSTEM_PROMPT = "system_prompt"
#: Text instruction that precedes the audio turn in NeMo's ``sqa_as_conversation``.
QUESTION = "question"
#: Name of the corpus the conversation comes from (e.g. ``CLEVR``).
DATA_SOURCE = "data_source"

# --- spoken dialogue fields (one cut per turn; ``supervision.speaker`` is the mapped role) ----
#: The turn's role after the recipe's role map (``user`` / ``assistant`` by default), also the
#: supervision's ``speaker``; kept here too because ``synthesize`` sets the speaker to its voice.
ROLE = "role"
#: On an assembled duplex conversation: the turn cuts it was built from, in turn order.
SOURCE_CUT_IDS = "source_cut_ids"
#: The corpus's own speaker / actor id of a turn (``LLM1``, ``t_<uuid>``'s actor letter, ...).
SPEAKER_ID = "speaker_id"
#: The corpus's emotion label of a turn (free-form or the corpus's set).
EMOTION = "emotion"
#: The emotion the turn's audio was synthesized with, when it differs in kind (DeepDialogue's
#: RAVDESS label in the segment file name).
AUDIO_EMOTION = "audio_emotion"
#: The conversation's topic domain (DeepDialogue's ``domain``).
DOMAIN = "domain"
#: The models that generated the conversation's text (DeepDialogue's ``model1``/``model2``).
GENERATED_BY = "generated_by"
#: The corpus split the conversation belongs to (``train``, ``valid_freq``, ...).
SPLIT = "split"
#: Speech tokens of the turn's audio as an integer list (InstructS2S's CosyVoice2 ``unit``).
SPEECH_UNITS = "speech_units"
#: How the turn's audio was made when not taken from the corpus (``synthesized: <engine>``);
#: ``missing`` when the corpus has none (a text-only turn).
AUDIO_SOURCE = "audio_source"
#: Earlier turns of the conversation: list of ``{"role": "user"|"assistant", "text": ...}``.
HISTORY = "history"
#: Supplied per-language versions of the user text: ``{language: text}``.
TRANSLATIONS = "translations"

# --- synthesis --------------------------------------------------------------------------------
#: Registry name of the TTS engine that spoke the prompt.
TTS_MODEL = "tts_model"
#: Wall-clock seconds spent synthesising the clip (for real-time factors).
SYNTHESIS_SECONDS = "synthesis_seconds"

# --- scores -----------------------------------------------------------------------------------
ASR_TEXT = "asr_text"
SIMILARITY = "similarity"
WER = "wer"
CER = "cer"
#: The error rate the gate uses: CER for ja/zh, WER otherwise.
ERROR_RATE = "error_rate"
MOS = "mos"
GATE_SCORE = "gate_score"
#: Why the gate rejected the cut; ``None`` for kept cuts.
REJECT_REASON = "reject_reason"

#: Keys NeMo writes into ``conversation.custom`` itself: never used as our field names.
NEMO_RESERVED = frozenset(
    {"input_ids", "context_ids", "answer_ids", "mask", "num_tokens", "dataloading_info"}
)

# --- exports (issue 5) ------------------------------------------------------------------------
#: Assistant (agent) audio of a DuplexS2S cut: a :class:`lhotse.Recording` as long as the cut.
TARGET_AUDIO = "target_audio"
#: In a NeMo conversation's ``custom``: path of the image relative to the export directory
#: (``image_mode="path"``); ``image`` then holds nothing.
IMAGE_PATH = "image_path"
#: In a NeMo conversation's ``custom``: the image format (``png``, ``jpg``) of ``image`` bytes.
IMAGE_FORMAT = "image_format"
#: In a NeMo conversation's ``custom``: per audio turn, in order, the cut id, spoken text, scores.
TURN_ATTRIBUTES = "turn_attributes"
#: A dialogue ``turn_attributes`` entry's turn type, ``audio`` or ``text`` (triplet entries have
#: none: each is an audio turn's).
TURN_TYPE = "type"
#: In a NeMo conversation's ``custom``: language and voice of every audio turn in it.
LANGUAGE = "language"
VOICE = "voice"

# --- rephrasing (the rephrase stage's record of how the spoken text was chosen) ----------------
#: What produced the spoken text: the rephrasing backend's registry name, ``"rules"`` (the
#: rule-based fallback) or ``"source"`` (the text as supplied: source turn or translation).
REPHRASED_BY = "rephrased_by"
#: Rewrites that failed validation, in the order tried: ``[{"by", "text", "reasons"}]``; ``[]``
#: when the first rewrite was accepted. Reasons are ``key: detail`` (e.g.
#: ``"low_similarity: 0.31 < 0.6"``).
REPHRASE_REJECTED = "rephrase_rejected"
#: Similarity (multilingual sentence embeddings) of the spoken text to its source; ``None`` when
#: not computed (identical texts give 1.0).
REPHRASE_SIMILARITY = "rephrase_similarity"

# --- exports ----------------------------------------------------------------------------------
#: Custom field of an exported cut whose id is not a safe file name (Shar, DuplexS2S): the cut's
#: own id. Lhotse's Shar reader requires every tar member to be named ``<cut id>.<ext>``, so
#: such a cut is stored under its :func:`~lhotse_triplets.paths.safe_name` and its id kept here;
#: :func:`~lhotse_triplets.export.reading.read_shar` gives the cut its own id back.
ORIGINAL_ID = "original_id"

# --- groups -----------------------------------------------------------------------------------
#: The numeric clip scores set by ``score`` and ``gate``, in the order tables show them.
SCORES = (SIMILARITY, WER, CER, ERROR_RATE, MOS, GATE_SCORE)

#: Every custom-field name above (computed last, so that it lists them all).
ALL = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
assert not ALL & NEMO_RESERVED
