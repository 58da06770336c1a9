"""Text similarity shared by curation and the micro-world: normalised words, n-grams, MinHash near-duplicates."""

from rdistill.similarity.minhash import NearDuplicateIndex, jaccard, near_duplicates, shingle_hashes
from rdistill.similarity.text import normalise_batch, word_ngrams

__all__ = ["NearDuplicateIndex", "jaccard", "near_duplicates", "normalise_batch", "shingle_hashes", "word_ngrams"]
