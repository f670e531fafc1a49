"""How well the offline speaker encoder separates speakers, on the offline TTS voices.

Synthesizes ``--sentences`` sentences per voice and language (Kokoro's 5 voices in en/fr/ja/zh,
Piper's packaged joe in en, espeak's 5 variants in en/fr/de/ja/zh; every voice says the same
sentences in a language), embeds every clip with each encoder (``resemblyzer``; ``dummy``, the
band-energy test encoder, as a baseline) and prints:

- equal error rate and ROC AUC of same/different-speaker pairs (a speaker is engine/voice, across
  languages), over all pairs and over subsets (same language, other languages, per engine);
- medoids: for each speaker, the clip with the least total cosine distance to its set, (a) whether
  it lies closer to its own speaker's clips than to any other speaker's (nearest-speaker) and (b)
  whether it is still one of the speaker's own clips when a quarter of the set is made of other
  speakers' clips (contaminated set);
- the time to embed ``--timing-clips`` clips (300) on this machine.

Run (about 4 minutes on 2 CPU cores, mostly Kokoro's synthesis)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/speaker_encoder.py
"""

import argparse
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import soxr
from sklearn.metrics import roc_auc_score, roc_curve
from tabulate import tabulate

from lhotse_triplets.backends import build
from lhotse_triplets.errors import ItemError

SR = 16000

#: (engine, languages) of the offline TTS voices; every voice of an engine is used.
ENGINES = {
    "kokoro": ["en", "fr", "ja", "zh"],
    "piper": ["en"],
    "espeak": ["en", "fr", "de", "ja", "zh"],
}

SENTENCES = {
    "en": [
        "What color is the large metal cube behind the red sphere?",
        "How many small rubber cylinders are there in the picture?",
        "Is the green ball the same size as the brown block?",
        "There is a shiny object left of the yellow cylinder; what shape is it?",
        "Are there more purple cubes than gray spheres?",
    ],
    "fr": [
        "De quelle couleur est le grand cube métallique derrière la sphère rouge ?",
        "Combien y a-t-il de petits cylindres en caoutchouc sur l'image ?",
        "La balle verte a-t-elle la même taille que le bloc marron ?",
        "Quelle est la forme de l'objet brillant à gauche du cylindre jaune ?",
        "Y a-t-il plus de cubes violets que de sphères grises ?",
    ],
    "de": [
        "Welche Farbe hat der große Metallwürfel hinter der roten Kugel?",
        "Wie viele kleine Gummizylinder sind auf dem Bild zu sehen?",
        "Ist der grüne Ball genauso groß wie der braune Block?",
        "Welche Form hat das glänzende Objekt links vom gelben Zylinder?",
        "Gibt es mehr lila Würfel als graue Kugeln?",
    ],
    "ja": [
        "赤い球の後ろにある大きな金属の立方体は何色ですか。",
        "画像の中に小さなゴムの円柱はいくつありますか。",
        "緑のボールは茶色のブロックと同じ大きさですか。",
        "黄色い円柱の左にある光沢のある物体はどんな形ですか。",
        "紫の立方体は灰色の球より多いですか。",
    ],
    "zh": [
        "红色球体后面的大金属立方体是什么颜色？",
        "图片里有多少个小橡胶圆柱体？",
        "绿色的球和棕色的方块一样大吗？",
        "黄色圆柱体左边那个闪亮的物体是什么形状？",
        "紫色立方体比灰色球体多吗？",
    ],
}


@dataclass
class Clip:
    speaker: str  # engine/voice
    engine: str
    language: str
    audio: np.ndarray  # 16 kHz


def synthesize(sentences: int, engines: list[str], languages: list[str]) -> tuple[list, dict]:
    """Every voice of ``engines`` saying ``sentences`` sentences in each language it speaks."""
    clips, stats = [], {}
    for engine in engines:
        start, failed = time.perf_counter(), 0
        tts = build("tts", engine)
        for language in [lang for lang in ENGINES[engine] if lang in languages]:
            texts = SENTENCES[language][:sentences]
            for voice in tts.voices(language):
                for text in texts:
                    try:
                        [audio] = tts.synthesize([text], language=language, voice=voice)
                    except ItemError:
                        failed += 1
                        continue
                    audio = soxr.resample(audio, tts.sampling_rate, SR).astype(np.float32)
                    clips.append(Clip(f"{engine}/{voice}", engine, language, audio))
        made = sum(c.engine == engine for c in clips)
        stats[engine] = (made, failed, time.perf_counter() - start)
    return clips, stats


def pair_scores(vectors: np.ndarray, clips: list, keep) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and same-speaker label of every pair ``i < j`` that ``keep`` accepts."""
    i, j = np.triu_indices(len(clips), k=1)
    chosen = np.array([keep(clips[a], clips[b]) for a, b in zip(i, j, strict=True)], dtype=bool)
    i, j = i[chosen], j[chosen]
    same = np.array(
        [clips[a].speaker == clips[b].speaker for a, b in zip(i, j, strict=True)], dtype=bool
    )
    return np.sum(vectors[i] * vectors[j], axis=1), same


def eer_auc(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Equal error rate (false accepts = false rejects) and ROC AUC; NaN with one class only."""
    if same.all() or not same.any():
        return float("nan"), float("nan")
    fpr, tpr, _ = roc_curve(same, scores)
    fnr = 1 - tpr
    k = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[k] + fnr[k]) / 2), float(roc_auc_score(same, scores))


SUBSETS = {
    "all pairs": lambda a, b: True,
    "same language": lambda a, b: a.language == b.language,
    "other languages": lambda a, b: a.language != b.language,
    "kokoro voices": lambda a, b: a.engine == b.engine == "kokoro",
    "espeak variants": lambda a, b: a.engine == b.engine == "espeak",
}


def medoid(vectors: np.ndarray) -> int:
    """Index of the row with the least total cosine distance to the others (vectorised)."""
    return int(np.argmin((1.0 - vectors @ vectors.T).sum(axis=1)))


def medoid_checks(vectors: np.ndarray, clips: list, seed: int) -> tuple[int, int, int]:
    """(speakers, medoids nearest to their own speaker, medoids of contaminated sets that are
    the speaker's own clips)."""
    rng = np.random.default_rng(seed)
    speakers = sorted({c.speaker for c in clips})
    owner = np.array([c.speaker for c in clips])
    nearest_ok = contaminated_ok = 0
    for speaker in speakers:
        own = np.flatnonzero(owner == speaker)
        m = own[medoid(vectors[own])]
        similarity = vectors @ vectors[m]
        similarity[m] = np.nan
        means = {s: np.nanmean(similarity[owner == s]) for s in speakers}
        nearest_ok += max(means, key=lambda s: -np.inf if np.isnan(means[s]) else means[s]) == (
            speaker
        )
        others = np.flatnonzero(owner != speaker)
        impostors = rng.choice(others, size=max(1, len(own) // 3), replace=False)
        pool = np.concatenate([own, impostors])
        contaminated_ok += owner[pool[medoid(vectors[pool])]] == speaker
    return len(speakers), nearest_ok, contaminated_ok


def timing(encoder, clips: list, n: int) -> tuple[float, float]:
    """Seconds to embed ``n`` clips (cycling through ``clips``) in one call, and their audio
    seconds."""
    batch = [clips[i % len(clips)].audio for i in range(n)]
    start = time.perf_counter()
    encoder.embed(batch)
    return time.perf_counter() - start, sum(len(a) for a in batch) / SR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=4, help="per voice and language")
    parser.add_argument("--engines", default="kokoro,piper,espeak")
    parser.add_argument("--languages", default="en,fr,de,ja,zh")
    parser.add_argument("--encoders", default="resemblyzer,dummy")
    parser.add_argument("--timing-clips", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    clips, stats = synthesize(args.sentences, args.engines.split(","), args.languages.split(","))
    print(
        tabulate(
            [(e, n, f, f"{s:.0f}") for e, (n, f, s) in stats.items()],
            headers=["engine", "clips", "failed", "synthesis s"],
        )
    )
    speakers = Counter(c.speaker for c in clips)
    seconds = [len(c.audio) / SR for c in clips]
    print(
        f"\n{len(clips)} clips, {len(speakers)} speakers, clip length median "
        f"{np.median(seconds):.1f} s (min {min(seconds):.1f}, max {max(seconds):.1f})\n"
    )
    separation, medoids, times = [], [], []
    for name in args.encoders.split(","):
        encoder = build("speaker", name)
        start = time.perf_counter()
        vectors = encoder.embed([c.audio for c in clips])
        embed_s = time.perf_counter() - start
        for subset, keep in SUBSETS.items():
            scores, same = pair_scores(vectors, clips, keep)
            if not same.size:
                continue
            eer, auc = eer_auc(scores, same)
            separation.append(
                (name, subset, int(same.sum()), int((~same).sum()), 100 * eer, auc,
                 scores[same].mean() if same.any() else np.nan,
                 scores[~same].mean() if (~same).any() else np.nan)
            )  # fmt: skip
        n, nearest, contaminated = medoid_checks(vectors, clips, args.seed)
        medoids.append((name, n, f"{nearest}/{n}", f"{contaminated}/{n}"))
        seconds_taken, audio_s = timing(encoder, clips, args.timing_clips)
        times.append(
            (name, args.timing_clips, f"{audio_s:.0f}", f"{seconds_taken:.1f}",
             f"{1000 * seconds_taken / args.timing_clips:.0f}", f"{seconds_taken / audio_s:.3f}",
             f"{embed_s:.1f}")
        )  # fmt: skip
    print(
        tabulate(
            separation,
            headers=["encoder", "pairs", "same", "different", "EER %", "AUC", "cos same",
                     "cos diff"],
            floatfmt=".3f",
        )
    )  # fmt: skip
    print()
    print(
        tabulate(
            medoids,
            headers=["encoder", "speakers", "medoid nearest own speaker",
                     "medoid own clip (+1/3 impostors)"],
        )
    )  # fmt: skip
    print()
    print(
        tabulate(
            times,
            headers=["encoder", "clips", "audio s", "embed s", "ms/clip", "RTF",
                     f"first call s ({len(clips)} clips)"],
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
