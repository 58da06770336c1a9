"""What one forward pass of the student says about a teacher's trace, before any training on it.

A component shared by the `teachers` stage (which teacher to distil from) and the `curate`
stage (which traces to keep), so that both rank by the same numbers. Per trace:
- `student_nll`: mean negative log-likelihood per token of the assistant turn given the prompt
  (global naturalness, negated);
- `mean_rank` and `rsr`: the rank–surprisal ratio of Yang et al. (arXiv 2601.14249), the mean
  clipped rank of each assistant token among the student's vocabulary (1 = its top choice)
  over its mean NLL. Lower is better: tokens the student finds unlikely (informative) but still
  ranks near the top (aligned);
- `local_nll`: local naturalness of Just et al. (arXiv 2510.03988), negated: each reasoning step
  (a sentence or line) is scored by its mean NLL per token given only the problem and the
  `window` steps before it, and the steps' scores are averaged. Lower is better; it does not
  punish a long trace for drifting away from what the student would say as a whole.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rdistill.config import SignalOptions
from rdistill.data import sft_messages

# The authors' guard against a trace the student predicts perfectly (no surprisal at all).
EPS = 1e-12
# Step patterns: a sentence ends at . ! or ? before whitespace, or at the end of its line.
STEP_PATTERNS = {"sentence": re.compile(r"\S.*?(?:[.!?](?=\s)|$)", re.M), "line": re.compile(r"\S(?:.*\S)?")}
# The assistant turn's think tags are steps of no content: predictable, they would dilute the mean.
THINK_TAGS = {"<think>", "</think>"}
# Per-trace columns written by the teachers stage (docs/schema.md, teacher_signals.parquet).
TRACE_SIGNALS = ("student_nll", "mean_rank", "rsr", "local_nll", "tokens", "steps")


@dataclass
class TokenScores:
    """The student's view of the target tokens of one sequence: NLL and clipped 1-based rank of each."""

    nll: list[float]
    rank: list[int]


def token_scores(
    model,
    sequences: list[tuple[list[int], int]],
    batch_size: int,
    rank_clip: int,
    pad_id: int,
    advance: Callable[[int], None] = lambda n: None,
) -> list[TokenScores]:
    """Score `ids[start:]` of every (ids, start) sequence, `batch_size` sequences a forward pass.

    Sequences are batched by length (less padding) and right-padded, so that positions are the
    same as unpadded. A token's rank is 1 + the number of vocabulary entries with a strictly
    higher logit, clipped at `rank_clip` as the authors do, so that a few hopeless tokens do
    not dominate the mean.
    """
    import torch

    order = sorted(range(len(sequences)), key=lambda index: len(sequences[index][0]))
    results: list[TokenScores | None] = [None] * len(sequences)
    for begin in range(0, len(order), batch_size):
        batch = order[begin : begin + batch_size]
        width = max(len(sequences[index][0]) for index in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, index in enumerate(batch):
            tokens = sequences[index][0]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float().cpu()
        for row, index in enumerate(batch):
            tokens, start = sequences[index]
            # Position p - 1 predicts token p.
            predicted = logits[row, start - 1 : len(tokens) - 1]
            targets = torch.tensor(tokens[start:])
            chosen = predicted.gather(1, targets[:, None])
            nll = torch.logsumexp(predicted, dim=-1) - chosen.squeeze(1)
            rank = (1 + (predicted > chosen).sum(dim=-1)).clamp(max=rank_clip)
            results[index] = TokenScores(nll.tolist(), rank.tolist())
        advance(len(batch))
    return results  # type: ignore[return-value]


def rank_surprisal_ratio(scores: TokenScores) -> float:
    """A trace's RSR: its mean clipped rank over its mean NLL (sum over sum, as in the authors' code)."""
    return sum(scores.rank) / max(sum(scores.nll), EPS)


def pooled_rsr(mean_ranks: list[float], mean_nlls: list[float]) -> float:
    """A teacher's RSR over its traces: the mean of their mean ranks over the mean of their mean NLLs.

    The authors' dataset-level RSR (their Appendix A.8): a ratio of averages, not an average of
    ratios, so that a trace with almost no surprisal cannot blow the teacher's score up.
    """
    return statistics.fmean(mean_ranks) / max(statistics.fmean(mean_nlls), EPS)


def step_spans(text: str, split: str) -> list[tuple[int, int]]:
    """(start, end) of each reasoning step of `text`: its sentences or its lines, think tags left out."""
    return [match.span() for match in STEP_PATTERNS[split].finditer(text) if match.group() not in THINK_TAGS]


def local_nll(steps: list[TokenScores]) -> float | None:
    """A trace's local score: the mean over its steps of each step's mean NLL per token (None without steps)."""
    means = [statistics.fmean(step.nll) for step in steps if step.nll]
    return statistics.fmean(means) if means else None


def trace_sequences(tokenizer, rollout: dict[str, Any], options: SignalOptions) -> dict[str, Any]:
    """The token sequences a trace is scored on: the whole assistant turn, and each step in its local window.

    The prompt is the chat template's user turn and assistant header; a step's context is the
    prompt followed by the `window` steps before it, exactly as they appear in the trace (with
    whatever separates them).
    """
    messages = sft_messages(rollout)
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    content = messages[-1]["content"]
    spans = step_spans(content, options.local.split)
    steps = []
    window = options.local.window
    for position, (start, end) in enumerate(spans):
        # Within the first `window` steps the context is everything before the step (the think tag too).
        context = prompt + content[spans[position - window][0] if position >= window else 0 : start]
        steps.append((encode(context + content[start:end]), len(encode(context))))
    return {"whole": (encode(full), len(encode(prompt))), "steps": [s for s in steps if s[1] < len(s[0])]}


def load_student(model_dir):
    """(model, tokenizer) of a local transformers causal LM, in eval mode, on the GPU when there is one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    return model.to("cuda") if torch.cuda.is_available() else model, AutoTokenizer.from_pretrained(model_dir)


def score_traces(
    model, tokenizer, rollouts: list[dict[str, Any]], options: SignalOptions, console=None
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Per rollout, the signals of `TRACE_SIGNALS`; and the seconds each kind of pass took.

    One forward pass over every whole trace gives NLL and rank (so `student_nll` and `rsr` cost
    the same); a second, over every step in its window, gives `local_nll`. A progress bar
    counts sequences.
    """
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    sequences = [trace_sequences(tokenizer, rollout, options) for rollout in rollouts]
    steps = [step for sequence in sequences for step in sequence["steps"]]
    seconds: dict[str, float] = {}
    with _progress(console, "score traces on the student", len(sequences) + len(steps)) as advance:
        started = time.perf_counter()
        whole = token_scores(
            model, [s["whole"] for s in sequences], options.batch_size, options.rank_clip, pad_id, advance
        )
        seconds["whole"] = time.perf_counter() - started
        started = time.perf_counter()
        local = iter(token_scores(model, steps, options.batch_size, options.rank_clip, pad_id, advance))
        seconds["local"] = time.perf_counter() - started
    rows = []
    for scores, sequence in zip(whole, sequences, strict=True):
        step_scores = [next(local) for _ in sequence["steps"]]
        rows.append(
            {
                "student_nll": statistics.fmean(scores.nll),
                "mean_rank": statistics.fmean(scores.rank),
                "rsr": rank_surprisal_ratio(scores),
                "local_nll": local_nll(step_scores),
                "tokens": len(scores.nll),
                "steps": len(step_scores),
            }
        )
    return rows, seconds


def teacher_signals(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """A teacher's signals over its scored traces: token-weighted NLL, pooled RSR, mean local NLL."""
    tokens = sum(row["tokens"] for row in rows)
    local = [row["local_nll"] for row in rows if row["local_nll"] is not None]
    return {
        "student_nll": sum(row["student_nll"] * row["tokens"] for row in rows) / tokens,
        "mean_rank": statistics.fmean(row["mean_rank"] for row in rows),
        "rsr": pooled_rsr([row["mean_rank"] for row in rows], [row["student_nll"] for row in rows]),
        "local_nll": statistics.fmean(local) if local else None,
    }


@contextmanager
def _progress(console, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich bar on a terminal, plain lines in a log (the project's `PlainProgress`); yields `advance(n)`."""
    from rich.progress import Progress

    from rdistill.console import PlainProgress, is_terminal

    plain = None if is_terminal(console) else PlainProgress(description, total, console=console)
    with Progress(console=console, transient=False, disable=plain is not None) as bar:
        task = bar.add_task(description, total=total)

        def advance(count: int) -> None:
            bar.advance(task, count)
            if plain is not None:
                plain.update(plain.completed + count)

        yield advance
