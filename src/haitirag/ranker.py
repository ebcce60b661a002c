"""The first stage of an answer: rank the sentences of the retrieved passages cheaply, for the reader.

A softmax over the candidates of one question (a conditional logit) on features of each sentence: dense
cosine with the question; soft match (for every content word of the question, its best cosine with a
contextual token vector of the sentence, from the same embedding model: mean, minimum, lowest third);
IDF-weighted share of the stemmed question terms in the sentence, its neighbours and the window; shared
question bigrams; how close together the matched terms are; passage rank and cosine; whether it holds a
token of the kind of answer the question asks for that is not already in the question; how much new content
it adds; its length; its rank by cosine and by overlap. Weights fitted on half of the SQuAD v1.1 dev
articles (``bench/fit_answer.py sentence``). The best few go to the reader (``reader.py``).
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .embedding import encode_tokens
from .records import Passage

if TYPE_CHECKING:
    from .index import Index

__all__ = ["SENTENCE_FEATURES", "SENTENCE_WEIGHTS", "Candidate", "SentenceRanker", "answer_type", "softmax"]

log = logging.getLogger(__name__)


CACHE_SENTENCES = 20_000  # sentences whose vectors are kept per loaded index (~30 KB each) before starting over
ENCODE_BATCH = 4  # candidate sentences a model call, sorted by length (measured: bench/ask_latency.py --encode-ab)

# sentence model: a softmax over the candidates of one question; weights of SENTENCE_FEATURES fitted by
# bench/fit_answer.py on SQuAD v1.1 dev (the articles of one half; the other half is held out)
_OWN = ("cos", "overlap", "overlap_window", "passage_rr", "passage_cos", "type_new", "type_missing", "novelty",
        "log_len", "bigrams", "proximity", "term_share", "pronoun_start", "prev_overlap", "next_overlap",
        "soft_mean", "soft_min", "soft_low")
_N_OWN = len(_OWN)
SENTENCE_FEATURES = (*_OWN, "rr_cos", "rr_overlap")  # rr_: 1 / rank among the question's candidates
SENTENCE_WEIGHTS = np.array([-1.765, 0.766, 6.125, 0.927, 4.480, 1.048, -1.048, 0.557, -1.313, 0.912, 0.306, -1.117,
                             0.419, -0.371, -1.043, 7.172, -0.024, 2.738, 0.743, 0.531])
WH_WORDS = {"who", "whom", "whose", "what", "which", "when", "where", "why", "how", "did", "does", "do", "is",
            "are", "was", "were"}
PRONOUNS = {"he", "she", "it", "they", "them", "his", "her", "hers", "their", "theirs", "its", "him", "this",
            "that", "these", "those", "there", "then"}
MONTHS = ("january february march april may june july august september october november december "
          "jan feb mar apr jun jul aug sep sept oct nov dec").split()
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
DATE_WORDS = set(MONTHS) | set(DAYS) | {"century", "centuries", "decade", "bc", "bce", "ad", "ce", "today",
                                        "yesterday", "tomorrow", "spring", "summer", "autumn", "winter", "morning",
                                        "evening", "night", "noon", "midnight", "weekend", "week", "ago", "era"}
NUMBER_WORDS = set(("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                    "hundred hundreds thousand thousands million millions billion billions trillion dozen dozens "
                    "half quarter third twice double triple several few many percent").split())
PERSON_HINTS = {"who", "whom", "whose"}
_LEAD_WH = ("who", "whom", "whose", "what", "which", "when", "where", "why", "how")
_WORD = re.compile(r"\w+(?:[.,]\d+)*", re.UNICODE)
_YEAR = re.compile(r"^(1\d{3}|20\d{2})s?$")
_NUM = re.compile(r"^\d+(?:[.,]\d+)*(?:s|st|nd|rd|th)?$")


def answer_type(question: str) -> str | None:
    """The kind of answer a question asks for: "person", "date", "number", "place", or None (no check)."""
    q = question.lower()
    words = re.findall(r"[a-z]+", q)
    if not words:
        return None
    joined = " ".join(words)
    if re.search(r"\bhow (many|much|long|far|old|large|big|high|tall|deep|wide|often|fast|heavy)\b", joined) or \
            re.search(r"\b(what|which) (percentage|percent|number|amount|proportion|size|population)\b", joined):
        return "number"
    # the question's own wh-word decides: "when" / "where" later on starts a clause ("What did he see when ...")
    lead = next((w for w in words if w in _LEAD_WH), None)
    if lead == "when" or re.search(r"\b(what|which) (year|years|date|day|month|century|decade|time|era|period)\b",
                                   joined):
        return "date"
    if any(w in PERSON_HINTS for w in words):
        return "person"
    if lead == "where" or re.search(r"\b(what|which) (country|city|state|place|town|region|continent)\b", joined):
        return "place"
    return None


def _surface(text: str) -> list[str]:
    return _WORD.findall(text)


def _has_type(words: Sequence[str], kind: str, exclude: set[str]) -> bool:
    """True when ``words`` (surface tokens of a sentence) hold a token of ``kind`` not in ``exclude``."""
    for i, w in enumerate(words):
        lw = w.lower()
        if lw in exclude:
            continue
        if kind == "number":
            if _NUM.match(w) or lw in NUMBER_WORDS:
                return True
        elif kind == "date":
            if _YEAR.match(w) or lw in DATE_WORDS or (_NUM.match(w) and i > 0 and words[i - 1].lower() in MONTHS):
                return True
        elif w[:1].isupper() and (i > 0 or w.isupper()) and lw not in PRONOUNS and lw not in WH_WORDS:
            return True  # person / place: a name, a capitalised token that is not the question's
    return False


def _soft_match(question: np.ndarray, sentence: np.ndarray) -> tuple[float, float, float]:
    """How well the sentence's contextual token vectors cover the question's content tokens.

    For each question token its best cosine with a sentence token; returns their mean, their minimum
    (the least supported question word) and the mean of the lowest third. Zeros without token vectors.
    """
    if not len(question) or not len(sentence):
        return 0.0, 0.0, 0.0
    best = np.sort((question @ sentence.T.astype(np.float32)).max(axis=1))
    return float(best.mean()), float(best[0]), float(best[: max(1, len(best) // 3)].mean())


def _plain(text: str) -> str:
    """Lower-case words only, for comparing a sentence with a title ("# Benin delays..." ~ "Benin Delays...")."""
    return " ".join(re.findall(r"\w+", text.lower()))


def _is_title(plain: str, title: str) -> bool:
    """A sentence that is the document's title, or the headline part of it ("Benin delays ..." in "... | Site")."""
    return bool(title) and (plain == title or (len(plain.split()) >= 3 and title.startswith(plain + " ")))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _content_piece(token: str) -> bool:
    """A model token that carries a content word: not a word-piece continuation, stop word or wh-word."""
    t = token.lower()
    if t.startswith("##"):
        return False
    t = t.lstrip("\u2581\u0120")  # SentencePiece / byte-level BPE word starts
    return any(ch.isalnum() for ch in t) and t not in _STOP and t not in WH_WORDS


_STOP = set(("a an the of to in on at for by with from and or but not no be been being is are was were do does "
             "did has have had as into about than so such can could would should will shall may might must also "
             "very just only over under again more most other some any each both all").split())


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage: ``index.documents[doc_id].text[start:end]``."""

    passage_rank: int
    doc_id: str
    start: int
    end: int
    sentence_no: int  # position among the document's sentences


def _missing(keys: Sequence[Any], cache: dict[Any, Any], *also: dict[Any, Any]) -> list[Any]:
    """The distinct ``keys`` that ``cache`` lacks. When adding them would pass ``CACHE_SENTENCES``, ``cache`` (and
    the caches in ``also``) start over, and every key of the call is missing."""
    todo = [k for k in dict.fromkeys(keys) if k not in cache]
    if todo and len(cache) + len(todo) > CACHE_SENTENCES:
        for c in (cache, *also):
            c.clear()
        todo = list(dict.fromkeys(keys))
    return todo


class SentenceRanker:
    """Scores candidate sentences; caches sentence vectors and tokens per index (they never change), each
    cache at most about ``CACHE_SENTENCES`` sentences."""

    def __init__(self, index: Index):
        self.index = index
        self._vec: dict[tuple[str, int, int], np.ndarray] = {}
        self._tv: dict[tuple[str, int, int], np.ndarray] = {}
        self._tok: dict[tuple[str, int, int], tuple[str, ...]] = {}
        self._idf: np.ndarray | None = None
        self._q: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # -- features ---------------------------------------------------------------------------------
    def idf(self, token: str) -> float:
        if self._idf is None:
            df = self.index.keyword.document_frequency().astype(np.float64)
            n = float(self.index.keyword.size)
            self._idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        tid = self.index.keyword.vocab.get(token)
        if tid is None or tid >= len(self._idf):
            return float(self._idf.max()) if len(self._idf) else 1.0
        return float(self._idf[tid])

    def _tokens(self, keys: list[tuple[str, int, int]]) -> list[tuple[str, ...]]:
        """Stemmed keyword tokens of each sentence, in order (cached)."""
        from .keyword import tokenize

        todo = _missing(keys, self._tok)
        if todo:
            texts = [self.index.documents[d].text[s:e] for d, s, e in todo]
            for key, toks in zip(todo, tokenize(texts, self.index.keyword.stemmer), strict=True):
                self._tok[key] = tuple(toks)
        return [self._tok[k] for k in keys]

    def _vectors(self, keys: list[tuple[str, int, int]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence vectors and content-token vectors of each sentence (one model pass, cached)."""
        todo = _missing(keys, self._vec, self._tv)
        if todo:
            vecs, toks = encode_tokens(self.index.embedder, [self.index.documents[d].text[s:e] for d, s, e in todo],
                                       batch_size=ENCODE_BATCH)
            for key, v, (words, rows) in zip(todo, vecs, toks, strict=True):
                self._vec[key] = np.asarray(v, dtype=np.float32)
                keep = [i for i, w in enumerate(words) if any(ch.isalnum() for ch in w)]
                self._tv[key] = np.asarray(rows[keep], dtype=np.float16)
        return np.stack([self._vec[k] for k in keys]), [self._tv[k] for k in keys]

    def question(self, resolved: str) -> tuple[np.ndarray, np.ndarray]:
        """The question's vector and the token vectors of its content words (no stop or wh-words), from one
        model pass; the vector is handed to the index, so ``search`` does not encode the question again."""
        hit = self._q.get(resolved)
        if hit is not None:
            return hit
        vecs, toks = encode_tokens(self.index.embedder, [resolved])
        words, rows = toks[0]
        keep = [i for i, w in enumerate(words) if _content_piece(w)]
        if not keep:
            keep = [i for i, w in enumerate(words) if any(ch.isalnum() for ch in w)]
        if len(self._q) >= 64:
            self._q.clear()
        self._q[resolved] = out = (vecs[0], np.asarray(rows[keep], dtype=np.float32))
        if len(toks[0][0]):  # a real model's pass (the hash embedder gives no token vectors): same vector
            self.index.remember_query(resolved, vecs[0])
        return out

    def candidates(self, passages: Sequence[Passage]) -> list[Candidate]:
        """The sentences of the passages, once each; not a document's title (metadata, not a sentence to quote)."""
        out: list[Candidate] = []
        seen: set[tuple[str, int, int]] = set()
        for rank, p in enumerate(passages):
            doc = self.index.documents[p.doc_id]
            title = _plain(doc.title)
            for no, (s, e) in enumerate(self.index.sentences.get(p.doc_id, [])):
                if s >= p.start and e <= p.end and (p.doc_id, s, e) not in seen:
                    plain = _plain(doc.text[s:e])
                    if plain and not _is_title(plain, title):
                        seen.add((p.doc_id, s, e))
                        out.append(Candidate(rank, p.doc_id, s, e, no))
        return out

    def rank(self, resolved: str, passages: Sequence[Passage]) -> tuple[list[Candidate], np.ndarray]:
        """The candidate sentences of ``passages`` and their first-stage logits (empty when none is usable)."""
        cands = self.candidates(passages)
        if not cands or not self.index.keyword.query_tokens(resolved):
            return [], np.zeros(0)
        return cands, self.features(resolved, cands, passages)["x"] @ SENTENCE_WEIGHTS

    def features(self, resolved: str, cands: Sequence[Candidate], passages: Sequence[Passage]) -> dict[str, Any]:
        """Per-candidate sentence features (matrix in SENTENCE_FEATURES order) and question-level evidence."""
        idx = self.index
        qseq = idx.keyword.query_tokens(resolved)
        qidf = {t: self.idf(t) for t in dict.fromkeys(qseq)}
        total = sum(qidf.values()) or 1.0
        qbigrams = set(itertools.pairwise(qseq))
        kind = answer_type(resolved.split(" (")[0])
        qsurface = {w.lower() for w in _surface(resolved)}
        keys = [(c.doc_id, c.start, c.end) for c in cands]
        toks = self._tokens(keys)
        # neighbours (previous and next sentence of the same document)
        nb: list[tuple[tuple[str, int, int] | None, tuple[str, int, int] | None]] = []
        for c in cands:
            sents = idx.sentences[c.doc_id]
            prev = (c.doc_id, *sents[c.sentence_no - 1]) if c.sentence_no > 0 else None
            nxt = (c.doc_id, *sents[c.sentence_no + 1]) if c.sentence_no + 1 < len(sents) else None
            nb.append((prev, nxt))
        nb_keys = [k for pair in nb for k in pair if k is not None]
        nb_tok = dict(zip(nb_keys, self._tokens(nb_keys), strict=True))
        qv, qtv = self.question(resolved)
        svecs, stv = self._vectors(keys)
        cos = svecs @ qv

        def share(tokens: set[str] | frozenset[str]) -> float:
            return sum(v for t, v in qidf.items() if t in tokens) / total

        n = len(cands)
        x = np.zeros((n, len(SENTENCE_FEATURES)), dtype=np.float64)
        type_new = np.zeros(n, dtype=bool)
        soft = np.zeros((n, 3))
        for i, c in enumerate(cands):
            tset = set(toks[i])
            window = set(tset)
            nb_share = []
            for k in nb[i]:
                window |= set(nb_tok[k]) if k is not None else set()
                nb_share.append(share(set(nb_tok[k])) if k is not None else 0.0)
            text = idx.documents[c.doc_id].text[c.start:c.end]
            words = _surface(text)
            has = kind is not None and _has_type(words, kind, qsurface)
            type_new[i] = has
            new = [t for t in tset if t not in qidf]
            pos = [j for j, t in enumerate(toks[i]) if t in qidf]
            matched = {toks[i][j] for j in pos}
            soft[i] = _soft_match(qtv, stv[i])
            p = passages[c.passage_rank]
            x[i, :_N_OWN] = (
                cos[i], share(tset), share(window), 1.0 / (c.passage_rank + 1),
                p.dense_score if p.dense_score is not None else 0.0, float(has), float(kind is not None and not has),
                len(new) / max(1, len(tset)), math.log1p(len(words)) / 4.0,
                len(qbigrams & set(itertools.pairwise(toks[i]))) / len(qbigrams) if qbigrams else 0.0,
                len(matched) / (pos[-1] - pos[0] + 1) if len(matched) > 1 else 0.0,
                len(matched) / max(1, len(qidf)),
                float(bool(words) and words[0].lower() in PRONOUNS),
                nb_share[0], nb_share[1], *soft[i])
        # ranks among this question's candidates (a softmax model cannot see differences from the best one)
        for j, name in enumerate(("cos", "overlap")):
            col = x[:, SENTENCE_FEATURES.index(name)]
            x[:, _N_OWN + j] = 1.0 / (1.0 + np.argsort(np.argsort(-col, kind="stable"), kind="stable"))
        return {"x": x, "type_new": type_new, "kind": kind, "qidf": qidf, "total": total, "cos": cos,
                "question": resolved, "qtv": qtv}
