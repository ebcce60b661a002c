"""Stage 6: extractive answers: pick the source sentence(s) that answer the question, cite them, or abstain.

1. Follow-ups: a short or pronoun-led question with a history ("When?", "Where did they oppose it?") is
   resolved by adding the content words of the previous (resolved) question; no language model.
2. Candidates: the sentences of the top passages (``Index.sentences`` spans inside each passage).
3. Sentence ranking: a softmax over the candidates of one question (a conditional logit) on features of
   each sentence: dense cosine with the question; soft match (for every content word of the question, its
   best cosine with a contextual token vector of the sentence, from the same embedding model: mean,
   minimum, lowest third); IDF-weighted share of the stemmed question terms in the sentence, its
   neighbours and the window; shared question bigrams; how close together the matched terms are; passage
   rank and cosine; whether it holds a token of the kind of answer the question asks for that is not
   already in the question; how much new content it adds; its length; its rank by cosine and by overlap.
   Weights fitted on half of the SQuAD v1.1 dev articles (``bench/fit_answer.py``).
4. One sentence, or two when the second completes the first: the runner-up, when it is adjacent and
   holds the expected answer type the first lacks, or when its probability is at least SECOND_RATIO of
   the best one's (support).
5. Abstention: a logistic model turns evidence about the chosen sentence (whether the question's names,
   numbers and dates occur around it and in its document, its cosine and its passage's, its share of the
   question's terms, the soft match of the least-supported question word, the expected answer type, a
   negation in the question that the sentence and its neighbours lack) into ``Answer.score``; below
   ``THRESHOLD`` the answer is refused. Fitted on SQuAD 2.0 dev plus answerable SQuAD v1.1 dev questions
   (half of the articles of each).
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
from .index import clean_query
from .records import Answer, Citation, Passage

if TYPE_CHECKING:
    from .index import Index

__all__ = ["NO_ANSWER", "THRESHOLD", "Answerer", "Candidate", "answer_type", "negation_unmatched", "resolve_followup"]

log = logging.getLogger(__name__)

NO_ANSWER = "The sources don't say."
THRESHOLD = 0.64  # on Answer.score; chosen on SQuAD 2.0 dev (see README "Answers and evaluation")
PASSAGES = 5  # passages whose sentences are candidates
SECOND_RATIO = 0.15  # a second sentence is kept when its probability is at least this share of the best

CACHE_SENTENCES = 20_000  # sentences whose vectors are kept per loaded index (~30 KB each) before starting over

# sentence model: a softmax over the candidates of one question; weights of SENTENCE_FEATURES fitted by
# bench/fit_answer.py on SQuAD v1.1 dev (the articles of one half; the other half is held out)
_OWN = ("cos", "overlap", "overlap_window", "passage_rr", "passage_cos", "type_new", "type_missing", "novelty",
        "log_len", "bigrams", "proximity", "term_share", "pronoun_start", "prev_overlap", "next_overlap",
        "soft_mean", "soft_min", "soft_low")
_N_OWN = len(_OWN)
SENTENCE_FEATURES = (*_OWN, "rr_cos", "rr_overlap")  # rr_: 1 / rank among the question's candidates
SENTENCE_WEIGHTS = np.array([-1.765, 0.766, 6.125, 0.927, 4.480, 1.048, -1.048, 0.557, -1.313, 0.912, 0.306, -1.117,
                             0.419, -0.371, -1.043, 7.172, -0.024, 2.738, 0.743, 0.531])
# abstention model: weights of ABSTAIN_FEATURES (fitted by bench/fit_answer.py on SQuAD 2.0 dev + answerable
# SQuAD v1.1 dev questions, one half of the articles of each); a feature whose fitted weight contradicted its
# meaning was left out (weight 0: still computed, and shown in Answer.details["evidence"])
ABSTAIN_FEATURES = ("prob", "margin", "logit", "entities_sentence", "entities_document", "type_new",
                    "terms_document", "missing_idf", "terms_window", "missing_idf_window", "cos", "negation_unmatched",
                    "overlap", "passage_cos", "soft_mean", "soft_min", "soft_mean_window", "soft_min_window", "bias")
ABSTAIN_WEIGHTS = np.array([0.000, 0.000, 0.000, 0.935, 0.420, 0.438, 0.000, 0.000, 0.000, 0.000, 1.970, -2.504, 0.527,
                            2.061, 0.000, 0.396, 0.000, 0.000, -3.019])

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
_NEGATION = re.compile(r"\b(not|never|no|none|nor|neither|cannot|without)\b|n't\b", re.IGNORECASE)
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


def _salient(question: str) -> list[tuple[str, ...]]:
    """The question's entities, numbers and dates (lower case): runs of capitalised words after the first, digits."""
    words = _surface(question)
    out: list[tuple[str, ...]] = []
    run: list[str] = []
    for i, w in enumerate([*words, ""]):
        if i > 0 and w[:1].isupper() and w.lower() not in PRONOUNS:
            run.append(w.lower())
            continue
        if run:
            out.append(tuple(run))
            run = []
        if any(c.isdigit() for c in w):
            out.append((w.lower(),))
    return list(dict.fromkeys(out))


def _coverage(entities: Sequence[tuple[str, ...]], words: set[str]) -> float:
    """Share of ``entities`` found in ``words``: all their words, or their initials ("United States" ~ "us")."""
    if not entities:
        return 1.0
    found = sum(all(w in words for w in e) or (len(e) > 1 and "".join(w[0] for w in e) in words) for e in entities)
    return found / len(entities)


def _soft_match(question: np.ndarray, sentence: np.ndarray) -> tuple[float, float, float]:
    """How well the sentence's contextual token vectors cover the question's content tokens.

    For each question token its best cosine with a sentence token; returns their mean, their minimum
    (the least supported question word) and the mean of the lowest third. Zeros without token vectors.
    """
    if not len(question) or not len(sentence):
        return 0.0, 0.0, 0.0
    best = np.sort((question @ sentence.T.astype(np.float32)).max(axis=1))
    return float(best.mean()), float(best[0]), float(best[: max(1, len(best) // 3)].mean())


def negation_unmatched(question: str, text: str) -> bool:
    """A negated question against a text with no negation ("What does X not do?" / "X does Y")."""
    return bool(_NEGATION.search(question)) and not _NEGATION.search(text)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _content_piece(token: str) -> bool:
    """A model token that carries a content word: not a word-piece continuation, stop word or wh-word."""
    t = token.lower()
    if t.startswith("##"):
        return False
    t = t.lstrip("\u2581\u0120")  # SentencePiece / byte-level BPE word starts
    return any(ch.isalnum() for ch in t) and t not in _STOP and t not in WH_WORDS


def resolve_followup(question: str, history: Sequence[str]) -> str:
    """``question`` made self-contained with the history (oldest first); unchanged when it stands alone.

    A question is a follow-up when it has fewer than three content words, or a pronoun and at most four
    content words and no name of its own; the previous question (itself resolved) lends its content words.
    """
    history = [h for h in history if isinstance(h, str) and h.strip()]
    if not history:
        return question
    words = re.findall(r"[A-Za-z0-9']+", question)
    lower = [w.lower() for w in words]
    content = [w for w in lower if w not in WH_WORDS and w not in PRONOUNS and w not in _STOP]
    has_pronoun = any(w in PRONOUNS for w in lower)
    has_name = any(w[:1].isupper() for w in words[1:])
    if not (len(content) < 3 or (has_pronoun and len(content) <= 4 and not has_name)):
        return question
    previous = resolve_followup(history[-1], history[:-1])
    prev_words = [w for w in re.findall(r"[A-Za-z0-9'.,-]+", previous) if w.lower().strip(".,") not in WH_WORDS]
    extra = " ".join(w for w in prev_words if w.lower() not in lower)
    return f"{question.rstrip()} ({extra.strip()})" if extra.strip() else question


_STOP = set(("a an the of to in on at for by with from and or but not no be been being is are was were do does "
             "did has have had as into about than so such can could would should will shall may might must also "
             "very just only over under again more most other some any each both all").split())


def _clean_or_none(text: object) -> str | None:
    from .errors import QueryError

    try:
        return clean_query(text)
    except QueryError:
        return None


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage: ``index.documents[doc_id].text[start:end]``."""

    passage_rank: int
    doc_id: str
    start: int
    end: int
    sentence_no: int  # position among the document's sentences


class Answerer:
    """Scores candidate sentences; caches sentence vectors and tokens per index (they never change)."""

    def __init__(self, index: Index, threshold: float = THRESHOLD, passages: int = PASSAGES,
                 second_ratio: float = SECOND_RATIO):
        self.index = index
        self.threshold = threshold
        self.passages = passages
        self.second_ratio = second_ratio
        self._vec: dict[tuple[str, int, int], np.ndarray] = {}
        self._tv: dict[tuple[str, int, int], np.ndarray] = {}
        self._tok: dict[tuple[str, int, int], tuple[str, ...]] = {}
        self._doc_tok: dict[str, frozenset[str]] = {}
        self._doc_surface: dict[str, frozenset[str]] = {}
        self._idf: np.ndarray | None = None

    # -- retrieval ------------------------------------------------------------------------------
    def retrieve(self, resolved: str, k: int, **filters: Any) -> list[Passage]:
        return self.index.search(resolved, k=k, **filters)

    def ask(self, question: str, history: Sequence[str] = (), k: int | None = None, **filters: Any) -> Answer:
        q = clean_query(question)
        hist = [h for h in (_clean_or_none(h) for h in history) if h]  # unusable history entries are skipped
        resolved = resolve_followup(q, hist)
        passages = self.retrieve(resolved, k or self.passages, **filters)
        return self.answer(q, resolved, passages)

    # -- features ---------------------------------------------------------------------------------
    def idf(self, token: str) -> float:
        if self._idf is None:
            sc = self.index.keyword.retriever.scores
            indptr = np.asarray(sc["indptr"], dtype=np.float64)
            df = np.diff(indptr)
            n = float(sc["num_docs"])
            self._idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        tid = self.index.keyword.retriever.vocab_dict.get(token)
        if tid is None or tid >= len(self._idf):
            return float(self._idf.max()) if len(self._idf) else 1.0
        return float(self._idf[tid])

    def _tokens(self, keys: list[tuple[str, int, int]]) -> list[tuple[str, ...]]:
        """Stemmed keyword tokens of each sentence, in order (cached)."""
        from .keyword import tokenize

        todo = [k for k in dict.fromkeys(keys) if k not in self._tok]
        if todo:
            texts = [self.index.documents[d].text[s:e] for d, s, e in todo]
            kw = self.index.keyword
            if kw._stemmer is None:
                kw.query_tokens("x")
            for key, toks in zip(todo, tokenize(texts, kw._stemmer), strict=True):
                self._tok[key] = tuple(toks)
        return [self._tok[k] for k in keys]

    def _vectors(self, keys: list[tuple[str, int, int]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence vectors and content-token vectors of each sentence (one model pass, cached)."""
        todo = [k for k in dict.fromkeys(keys) if k not in self._vec]
        if todo:
            if len(self._vec) + len(todo) > CACHE_SENTENCES:
                self._vec.clear()
                self._tv.clear()
            vecs, toks = encode_tokens(self.index.embedder, [self.index.documents[d].text[s:e] for d, s, e in todo])
            for key, v, (words, rows) in zip(todo, vecs, toks, strict=True):
                self._vec[key] = np.asarray(v, dtype=np.float32)
                keep = [i for i, w in enumerate(words) if any(ch.isalnum() for ch in w)]
                self._tv[key] = np.asarray(rows[keep], dtype=np.float16)
        return np.stack([self._vec[k] for k in keys]), [self._tv[k] for k in keys]

    def _question(self, resolved: str) -> tuple[np.ndarray, np.ndarray]:
        """The question's vector and the token vectors of its content words (no stop or wh-words)."""
        vecs, toks = encode_tokens(self.index.embedder, [resolved])
        words, rows = toks[0]
        keep = [i for i, w in enumerate(words) if _content_piece(w)]
        if not keep:
            keep = [i for i, w in enumerate(words) if any(ch.isalnum() for ch in w)]
        return vecs[0], np.asarray(rows[keep], dtype=np.float32)

    def _doc_tokens(self, doc_id: str) -> tuple[frozenset[str], frozenset[str]]:
        if doc_id not in self._doc_tok:
            from .keyword import tokenize

            kw = self.index.keyword
            if kw._stemmer is None:
                kw.query_tokens("x")
            doc = self.index.documents[doc_id]
            text = f"{doc.title}\n{doc.text}"
            self._doc_tok[doc_id] = frozenset(tokenize([text], kw._stemmer)[0])
            self._doc_surface[doc_id] = frozenset(w.lower() for w in _surface(text))
        return self._doc_tok[doc_id], self._doc_surface[doc_id]

    def candidates(self, passages: Sequence[Passage]) -> list[Candidate]:
        out: list[Candidate] = []
        seen: set[tuple[str, int, int]] = set()
        for rank, p in enumerate(passages):
            for no, (s, e) in enumerate(self.index.sentences.get(p.doc_id, [])):
                if s >= p.start and e <= p.end and (p.doc_id, s, e) not in seen:
                    if self.index.documents[p.doc_id].text[s:e].strip():
                        seen.add((p.doc_id, s, e))
                        out.append(Candidate(rank, p.doc_id, s, e, no))
        return out

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
        qv, qtv = self._question(resolved)
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
                "question": resolved, "salient": _salient(resolved), "passages": tuple(passages), "qtv": qtv}

    def evidence(self, f: dict[str, Any], cands: Sequence[Candidate], logits: np.ndarray, best: int) -> np.ndarray:
        """Question-level features in ABSTAIN_FEATURES order for the chosen sentence."""
        c = cands[best]
        doc_tok, doc_surface = self._doc_tokens(c.doc_id)
        sents = self.index.sentences[c.doc_id]
        lo, hi = max(0, c.sentence_no - 1), min(len(sents) - 1, c.sentence_no + 1)
        window_text = self.index.documents[c.doc_id].text[sents[lo][0]:sents[hi][1]]
        window = {w.lower() for w in _surface(window_text)}
        sal = f["salient"]
        ent_s, ent_d = _coverage(sal, window), _coverage(sal, set(doc_surface))
        qidf: dict[str, float] = f["qidf"]
        terms_d = sum(v for t, v in qidf.items() if t in doc_tok) / f["total"]
        missing = max([v for t, v in qidf.items() if t not in doc_tok], default=0.0)
        win_keys = [(c.doc_id, *sents[j]) for j in range(lo, hi + 1)]
        win_tok = {t for toks in self._tokens(win_keys) for t in toks}
        missing_w = max([v for t, v in qidf.items() if t not in win_tok], default=0.0)
        _, win_tv = self._vectors(win_keys)
        soft_w = _soft_match(f["qtv"], np.concatenate(win_tv))
        probs = _softmax(logits)
        second = float(np.partition(probs, -2)[-2]) if len(probs) > 1 else 0.0
        negation = float(negation_unmatched(f["question"], window_text))
        x = f["x"][best]
        own = {name: j for j, name in enumerate(SENTENCE_FEATURES)}
        return np.array([probs[best], probs[best] - second, logits[best] / 10.0, ent_s, ent_d,
                         float(f["type_new"][best]), terms_d, missing / 10.0, x[own["overlap_window"]],
                         missing_w / 10.0, float(f["cos"][best]), negation, x[own["overlap"]],
                         x[own["passage_cos"]], x[own["soft_mean"]], x[own["soft_min"]], soft_w[0], soft_w[1], 1.0])

    # -- the answer -------------------------------------------------------------------------------
    def answer(self, question: str, resolved: str, passages: Sequence[Passage]) -> Answer:
        passages = tuple(passages)
        top = passages[: self.passages]
        cands = self.candidates(top)
        if not cands or not self.index.keyword.query_tokens(resolved):
            return self._refusal(question, resolved, passages, 0.0, "no candidate sentence or no usable word")
        f = self.features(resolved, cands, top)
        logits = f["x"] @ SENTENCE_WEIGHTS
        probs = _softmax(logits)
        best = int(np.argmax(logits))
        ev = self.evidence(f, cands, logits, best)
        score = float(1.0 / (1.0 + math.exp(-float(ev @ ABSTAIN_WEIGHTS))))
        chosen = [best]
        second = self._second(cands, probs, f, best)
        if second is not None:
            chosen.append(second)
        details = {"kind": f["kind"], "sentence_probs": [float(probs[i]) for i in chosen],
                   "evidence": dict(zip(ABSTAIN_FEATURES, (float(v) for v in ev), strict=True))}
        if score < self.threshold:
            return self._refusal(question, resolved, passages, score, "score under threshold", details,
                                 cands, chosen)
        chosen.sort(key=lambda i: (cands[i].doc_id != cands[best].doc_id, cands[i].doc_id, cands[i].start))
        cits = []
        for i in chosen:
            c = cands[i]
            doc = self.index.documents[c.doc_id]
            cits.append(Citation(doc.doc_id, doc.title, doc.date, doc.source, c.start, c.end,
                                 doc.text[c.start:c.end], doc.url))
        if len(cits) == 2 and cits[0].doc_id == cits[1].doc_id and \
                not self.index.documents[cits[0].doc_id].text[cits[0].end:cits[1].start].strip():
            text = self.index.documents[cits[0].doc_id].text[cits[0].start:cits[1].end]  # adjacent: one span
        else:
            text = " ".join(c.quote.strip() for c in cits)
        return Answer(question, text, tuple(cits), False, passages, score, resolved, details)

    def _second(self, cands: Sequence[Candidate], probs: np.ndarray, f: dict[str, Any], best: int) -> int | None:
        """A second sentence when it completes the best one, else None."""
        b = cands[best]
        order = np.argsort(-probs)
        for i in (int(j) for j in order[1:]):
            c = cands[i]
            adjacent = c.doc_id == b.doc_id and abs(c.sentence_no - b.sentence_no) == 1
            if adjacent and f["kind"] is not None and not f["type_new"][best] and f["type_new"][i]:
                return i  # the neighbour holds the kind of answer the best sentence lacks
            if probs[i] >= self.second_ratio * probs[best]:
                return i
            break
        return None

    def _refusal(self, question: str, resolved: str, passages: tuple[Passage, ...], score: float, why: str,
                 details: dict[str, Any] | None = None, cands: Sequence[Candidate] = (),
                 chosen: Sequence[int] = ()) -> Answer:
        d = dict(details or {})
        d["refused_because"] = why
        if cands and chosen:
            c = cands[chosen[0]]
            d["closest"] = {"doc_id": c.doc_id, "start": c.start, "end": c.end}
        return Answer(question, NO_ANSWER, (), True, passages, score, resolved, d)
