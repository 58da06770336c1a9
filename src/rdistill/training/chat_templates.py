"""How training keeps the loss on the assistant turn, for any chat template.

Two paths, both TRL's own masking:
- a template that marks the assistant turn with `{% generation %}...{% endgeneration %}` (the
  micro student's does): the examples stay chat messages and `assistant_only_loss` takes the
  mask from the markers;
- any other template (almost every released one: SmolLM2's, Qwen2.5's, Llama 3.1's): each
  conversation is rendered with the student's own template and cut in TRL's prompt/completion
  form, and `completion_only_loss` masks the prompt. The prompt is the rendering of the turns
  before the last assistant turn with the generation prompt (what the student sees when it is
  asked), the completion the rest of the whole rendering, up to and including the end-of-turn
  token (so the student learns to stop) and no further: the line break ChatML puts after
  `<|im_end|>` is the next turn's business, not the answer's.
No template is swapped for a "training variant", so what the student is trained on is exactly
what it is later prompted with.
"""

from __future__ import annotations

from pathlib import Path

from rdistill.errors import RecipeError

# End-of-turn tokens of the common families, besides the tokenizer's eos: ChatML (SmolLM2, Qwen),
# Llama 3 (eot, and eom after a tool call), Gemma, Phi-3. A ChatML template whose tokenizer's eos is
# <|endoftext|> (base models) still ends the assistant turn with <|im_end|>.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>")


def chat_template(tokenizer, model_path: Path) -> str:
    """The tokenizer's own chat template; a student without one cannot be trained on chat messages."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise RecipeError(
            f"{model_path}: the tokenizer has no chat template; a student needs one to be trained on chat messages"
        )
    return template


def has_markers(template: str) -> bool:
    """Whether the template marks the assistant turn for TRL's `assistant_only_loss`."""
    from trl.chat_template_utils import has_generation_markers

    return has_generation_markers(template)


def check_marked_template(tokenizer, template: str, model_path: Path) -> None:
    """A marked template must mark the end-of-turn token too, or the student never learns to stop."""
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    if not is_chat_template_stop_token_trained(tokenizer, chat_template=template):
        raise RecipeError(
            f"{model_path}: its chat template leaves the assistant's end-of-turn token outside "
            "{% generation %}...{% endgeneration %}, so the student would never learn to stop; move the token inside"
        )


def end_of_turn_tokens(tokenizer) -> tuple[str, ...]:
    """Strings that may close the assistant turn: the tokenizer's eos and the families' end-of-turn tokens."""
    return tuple(token for token in (tokenizer.eos_token, *END_OF_TURN) if token)


def prompt_completion(tokenizer, messages: list[dict[str, str]], model_path: Path) -> dict[str, str]:
    """One conversation in TRL's prompt/completion form, rendered with the tokenizer's template.

    Only the last assistant turn is the completion: earlier turns are context, as when the
    student is asked. A template that renders the start of the conversation differently once
    the answer follows, or ends the answer with no end-of-turn token, is an error, never a
    silently wrong mask.
    """
    if not messages or messages[-1]["role"] != "assistant":
        raise RecipeError(f"{model_path}: a training conversation must end with an assistant turn")
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(messages, tokenize=False)
    if not whole.startswith(prompt):
        raise RecipeError(
            f"{model_path}: its chat template renders the conversation before the assistant turn differently "
            "from the generation prompt, so the answer cannot be cut out of the rendering; mark the assistant "
            "turn with {% generation %}...{% endgeneration %} instead"
        )
    completion = whole[len(prompt) :].rstrip()
    stops = end_of_turn_tokens(tokenizer)
    if not completion.endswith(stops):
        raise RecipeError(
            f"{model_path}: its chat template ends the assistant turn with none of the end-of-turn tokens "
            f"{', '.join(stops)}, so the student would never learn to stop"
        )
    return {"prompt": prompt, "completion": completion}
