"""Metric fixtures from the reference packages, for test/metrics.test.ts: corpus BLEU from
sacrebleu (defaults), ROUGE-1/2/L from rouge-score (no stemming), and classification scores from
scikit-learn (zero_division=0). Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_metric_fixtures.py
"""
import json
import os

import rouge_score
import sacrebleu
import sklearn
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "metrics.json")

HYPS = [
    "The cat sat on the mat.",
    "It's 3.14, not 3,14 -- right?",
    "A deadlock: two processes (each waiting) on the other!",
    "",
    "Tokens & entities &amp; \"quotes\" cost $5-6 in 2024-01-05.",
    "Completely unrelated words here",
    "naïve café über résumé",
    "the the the the the the the",
]
REFS_A = [
    "The cat is on the mat.",
    "It is 3.14, not 3,14 - right?",
    "Deadlock: two processes, each waiting for the other.",
    "Nothing was said.",
    "Tokens &amp; entities & \"quotes\" cost $5-6 on 2024-01-05.",
    "Something else entirely.",
    "naive cafe uber resume",
    "The cat sat on the mat.",
]
REFS_B = [
    "There is a cat on the mat.",
    "It's 3.14 and not 3,14, right?",
    "A deadlock is when two processes wait on each other.",
    "",
    "Tokens and entities cost 5-6 dollars.",
    "Unrelated words, completely.",
    "naïve café",
    "the cat",
]
# Python's whitespace is not JavaScript's: str.split() also splits at U+001C..U+001F and U+0085,
# and not at U+FEFF; BLEU right-strips each segment (Python's whitespace) before tokenizing, so a
# trailing "-\n" keeps its hyphen.
WS_HYPS = ["the quick\x1cbrown fox\x85jumps over the lazy dog", "a zero\ufeffwidth space stays inside one word here",
           "a line that ends with a hyphen-\n", "two\u2029paragraphs of text are here  "]
WS_REFS = ["the quick brown fox jumps over the lazy dog", "a zero\ufeffwidth space stays inside one word here",
           "a line that ends with a hyphen-", "two paragraphs of text are here"]


def main() -> None:
    bleu = {
        "one_ref": sacrebleu.corpus_bleu(HYPS, [REFS_A]),
        "two_refs": sacrebleu.corpus_bleu(HYPS, [REFS_A, REFS_B]),
        "first_three": sacrebleu.corpus_bleu(HYPS[:3], [REFS_A[:3]]),
        "no_match": sacrebleu.corpus_bleu(["zzz yyy"], [["aaa bbb"]]),
        "whitespace": sacrebleu.corpus_bleu(WS_HYPS, [WS_REFS]),
    }
    tok = sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    rouge = [{k: {"precision": v.precision, "recall": v.recall, "fmeasure": v.fmeasure} for k, v in scorer.score(t, p).items()}
             for t, p in zip(REFS_A, HYPS)]
    truth = ["spam", "ham", "ham", "eggs", "spam", "ham", "eggs", "ham", "spam", "spam"]
    pred = ["spam", "ham", "spam", "ham", "spam", "ham", "ham", "ham", "eggs", "spam"]
    labels = ["eggs", "ham", "spam"]
    cls = {"truth": truth, "pred": pred, "labels": labels, "accuracy": accuracy_score(truth, pred),
           "confusion": confusion_matrix(truth, pred, labels=labels).tolist()}
    for avg in [None, "macro", "micro", "weighted"]:
        p, r, f, s = precision_recall_fscore_support(truth, pred, labels=labels, average=avg, zero_division=0)
        cls[str(avg)] = {"precision": list(map(float, p)) if avg is None else float(p),
                         "recall": list(map(float, r)) if avg is None else float(r),
                         "f1": list(map(float, f)) if avg is None else float(f)}
    fixture = {
        "versions": {"sacrebleu": sacrebleu.__version__, "rouge_score": getattr(rouge_score, "__version__", "?"), "sklearn": sklearn.__version__},
        "hyps": HYPS, "refsA": REFS_A, "refsB": REFS_B,
        "tokenized": [tok(h) for h in HYPS + REFS_A],
        "wsHyps": WS_HYPS, "wsRefs": WS_REFS,
        "wsTokenized": [tok(h) for h in WS_HYPS],
        "bleu": {k: {"score": v.score, "precisions": v.precisions, "bp": v.bp, "sys_len": v.sys_len, "ref_len": v.ref_len} for k, v in bleu.items()},
        "rouge": rouge,
        "classification": cls,
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
