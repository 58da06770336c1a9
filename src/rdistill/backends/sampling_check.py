"""A check that sampling settings reach the model: k samples of a problem at temperature > 0 should differ.

Some servers accept `temperature`, `top_p` and `seed` and ignore them (`transformers serve`
logs that they "may be ignored" and answers every seed with the same text). Every one of a
problem's k samples is then the same, and pass@k, maj@k, trajectory diversity and per-problem
pass rates silently mean something else. The check watches the first `PROBE_PROBLEMS` problems
whose samples all arrive and flags the backend when each of them got k identical texts; a real
sampler at temperature > 0 makes that vanishingly rare over several problems (a model nearly
certain of every answer is the exception, which the warning names too). `generate` and
`evaluate` run it on their first batch and record the verdict; the micro-world's procedural
teachers are not samplers (one of them writes the same trace every time by design), so they
are not checked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from rdistill.config import ModelSpec, SamplingParams

PROBE_PROBLEMS = 8


def endpoint_of(spec: ModelSpec) -> str:
    """The backend behind a spec, as a user would look for it: server URLs, or a model folder."""
    if spec.backend == "openai":
        return f"openai endpoint {', '.join(spec.base_urls)} (model {spec.model or spec.name})"
    return f"{spec.backend} model {spec.model or spec.name}"


class SamplingCheck:
    """Watches completions as they arrive; decides once the first problems' samples are all in.

    `expected`: problem id -> samples asked for in this session; only problems with two or more count.
    """

    def __init__(self, spec: ModelSpec, expected: dict[str, int], params: SamplingParams) -> None:
        self.temperature = params.temperature
        sampled = spec.backend != "micro" and params.temperature > 0
        self.expected = {pid: n for pid, n in expected.items() if n > 1} if sampled else {}
        self.texts: dict[str, list[str]] = defaultdict(list)
        self.complete: list[str] = []
        self.verdict: dict[str, Any] | None = None

    @classmethod
    def for_requests(cls, spec: ModelSpec, problem_ids: list[str], params: SamplingParams) -> SamplingCheck:
        """A check over requests given by their problem ids (one entry per sample asked for)."""
        return cls(spec, dict(Counter(problem_ids)), params)

    @classmethod
    def over(cls, spec: ModelSpec, samples: list[tuple[str, str]], params: SamplingParams) -> dict[str, Any] | None:
        """The verdict on finished (problem id, text) samples, in their order: the same rule after the fact."""
        check = cls.for_requests(spec, [problem_id for problem_id, _ in samples], params)
        for problem_id, text in samples:
            check.observe(problem_id, text)
        return check.finish()

    @property
    def applies(self) -> bool:
        """Whether anything is checked: a sampling backend, temperature > 0, some problem asked k > 1 times."""
        return bool(self.expected)

    def observe(self, problem_id: str, text: str) -> dict[str, Any] | None:
        """Count one sample; returns the verdict the moment it is reached (once), else None."""
        if self.verdict is not None or problem_id not in self.expected:
            return None
        self.texts[problem_id].append(text)
        if len(self.texts[problem_id]) == self.expected[problem_id]:
            self.complete.append(problem_id)
            if len(self.complete) == min(PROBE_PROBLEMS, len(self.expected)):
                return self._decide()
        return None

    def finish(self) -> dict[str, Any] | None:
        """The verdict at the end: reached already, or over the problems that completed (None if none did)."""
        if self.verdict is None and self.complete:
            return self._decide()
        return self.verdict

    def _decide(self) -> dict[str, Any]:
        identical = sum(len(set(self.texts[pid])) == 1 for pid in self.complete)
        self.verdict = {
            "problems_checked": len(self.complete),
            "identical_problems": identical,
            "samples_per_problem": max(self.expected[pid] for pid in self.complete),
            "temperature": self.temperature,
            "ignores_sampling": identical == len(self.complete),
        }
        return self.verdict


def warning(verdict: dict[str, Any], who: str, endpoint: str, sampling_key: str, samples_key: str) -> str:
    """The warning (plain text) for a backend whose samples all came back identical, naming it and the recipe keys."""
    return (
        f"{who} ({endpoint}) returned {verdict['samples_per_problem']} identical samples "
        f"for each of the first {verdict['problems_checked']} problems at temperature {verdict['temperature']:g} "
        f"({sampling_key}): it seems to ignore sampling settings, so pass@k, maj@k and the diversity between "
        f"samples are not what they claim (unless the model is certain of every answer). Check the server's "
        f"sampling support, or set {samples_key}: 1."
    )


def print_warning(console, text: str) -> None:
    """Print a warning in bold yellow; `text` is printed as it is (recipe keys hold brackets)."""
    from rich.markup import escape

    console.print(f"[bold yellow]warning:[/] {escape(text)}")
