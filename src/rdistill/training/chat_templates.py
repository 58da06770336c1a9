"""The chat template training renders with: the student's own, with the assistant turn marked.

TRL's assistant-only loss takes its mask from `{% generation %}` markers in the chat template.
Few released templates have them, so a template without markers is swapped for a training
variant that renders the same text with the markers added: TRL ships variants for the families
it knows (Qwen2.5, Qwen3, Llama 3, Gemma, Phi-3, DeepSeek-R1 distills, ...), rdistill adds
Llama 3.1's. Any other template is an error that says how to mark it, never a silent fallback
to training on the prompt too.
"""

from __future__ import annotations

from pathlib import Path

from rdistill.errors import RecipeError

TEMPLATES = Path(__file__).parent / "templates"


def rdistill_training_templates() -> dict[str, str]:
    """Training variants rdistill ships, keyed by the original template they replace."""
    from trl.chat_template_utils import llama3_1_chat_template

    return {llama3_1_chat_template: (TEMPLATES / "llama3_1_training.jinja").read_text(encoding="utf-8")}


def training_chat_template(tokenizer, model_path: Path) -> str:
    """The template to train with: one whose assistant turn, end-of-turn token included, is marked for the loss."""
    from trl.chat_template_utils import (
        get_training_chat_template,
        has_generation_markers,
        is_chat_template_stop_token_trained,
    )

    original = tokenizer.chat_template
    if not original:
        raise RecipeError(
            f"{model_path}: the tokenizer has no chat template; a student needs one to be trained on chat messages"
        )
    if isinstance(original, dict):
        original = original["default"]
    if has_generation_markers(original):
        template = original
    elif original in rdistill_training_templates():
        template = rdistill_training_templates()[original]
    else:
        try:
            template = get_training_chat_template(tokenizer) or original
        except ValueError as exc:
            raise RecipeError(
                f"{model_path}: its chat template marks no assistant turn and is not a known family (Qwen2.5, Qwen3, "
                "Llama 3/3.1, Gemma, Phi-3, DeepSeek-R1 distills, ...); wrap the assistant's content and end-of-turn "
                "token in {% generation %}...{% endgeneration %} in its tokenizer_config.json / chat_template.jinja"
            ) from exc
    if not is_chat_template_stop_token_trained(tokenizer, chat_template=template):
        raise RecipeError(
            f"{model_path}: its chat template leaves the assistant's end-of-turn token outside "
            "{% generation %}...{% endgeneration %}, so the student would never learn to stop; move the token inside"
        )
    return template
