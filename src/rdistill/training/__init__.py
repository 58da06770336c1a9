"""Fine-tuning: TRL's `SFTTrainer` on chat conversations, loss on the assistant turn only.

A component, not a stage: the `train` stage distils the student with it, the `base` stage
trains the micro-world's base student, and the `teachers` stage's proxy rule fine-tunes a
short-lived student per teacher.
"""

from rdistill.training.sft import TRAINING_LOG, fine_tune

__all__ = ["TRAINING_LOG", "fine_tune"]
